import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok, storeLeftovers, tsbuild } from '../helpers/cli.js';
import { native } from '../../src/native/index.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const DOCKER = '/usr/bin/docker';

/** The archive's files by name, read with GNU tar. */
function members(tarball: string): Map<string, Buffer> {
  const dir = tempDir('unpacked-');
  execFileSync('tar', ['-xf', tarball, '-C', dir]);
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(path.join(dir, r)).isDirectory()) walk(r);
      else out.set(r, readFileSync(path.join(dir, r)));
    }
  };
  walk('');
  return out;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (files: Map<string, Buffer>, digest: string) => files.get(`blobs/sha256/${digest.slice(7)}`)!;

describe.skipIf(lacks('root'))('-o with BuildKit\'s type=docker|oci form and gzip layers', () => {
  const root = tempDir('store-');
  const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built\n', 'hello.txt': 'hello\n'.repeat(1000) };
  let ctx: string;
  let imageId: string;
  let gzTar: string;

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    ctx = context(files);
    gzTar = path.join(tempDir(), 'image.tar');
    imageId = (await ok(root, ['-q', '-t', 'gz:1', '-o', `type=docker,dest=${gzTar}`, ctx], { env: epoch })).stdout.trim();
  });

  it('writes gzip layers under a Docker manifest of their own, with the same image ID', () => {
    const m = members(gzTar);
    const [entry] = JSON.parse(m.get('manifest.json')!.toString());
    expect(entry.Config).toBe(`blobs/sha256/${imageId.slice(7)}`);
    expect(entry.RepoTags).toEqual(['gz:1']);
    const index = JSON.parse(m.get('index.json')!.toString());
    const manifestBytes = blob(m, index.manifests[0].digest);
    expect(sha(manifestBytes)).toBe(index.manifests[0].digest);
    const manifest = JSON.parse(manifestBytes.toString());
    // BuildKit's type=docker: Docker's media types (oci-mediatypes=false)
    expect(index.manifests[0].mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config).toEqual({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: imageId, size: blob(m, imageId).length });
    const config = JSON.parse(blob(m, imageId).toString());
    expect(manifest.layers).toHaveLength(3);
    manifest.layers.forEach((l: { mediaType: string; digest: string; size: number }, i: number) => {
      expect(l.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
      const data = blob(m, l.digest);
      expect(sha(data)).toBe(l.digest);
      expect(data.length).toBe(l.size);
      expect(data.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
      expect(sha(gunzipSync(data))).toBe(config.rootfs.diff_ids[i]); // decompresses to the layer
      expect(entry.Layers[i]).toBe(`blobs/sha256/${l.digest.slice(7)}`);
    });
  });

  it.skipIf(lacks('docker'))('loads into dockerd and runs', () => {
    expect(execFileSync(DOCKER, ['load', '-i', gzTar], { encoding: 'utf8' })).toContain('Loaded image: gz:1');
    expect(execFileSync(DOCKER, ['run', '--rm', 'gz:1', 'cat', '/built', '/hello.txt'], { encoding: 'utf8' })).toBe(`built\n${files['hello.txt']}`);
  });

  let oci = '';
  let ociLayers: string[] = [];
  it('type=oci writes the OCI layout alone', async () => {
    oci = path.join(tempDir(), 'oci.tar');
    await ok(root, ['-q', '-t', 'gz:1', '-o', `type=oci,dest=${oci}`, ctx], { env: epoch });
    const m = members(oci);
    const index = JSON.parse(m.get('index.json')!.toString());
    expect(index.manifests[0].mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const manifest = JSON.parse(blob(m, index.manifests[0].digest).toString());
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(3).fill('application/vnd.oci.image.layer.v1.tar+gzip'));
    expect(m.has('manifest.json')).toBe(false);
    expect(m.has('repositories')).toBe(false);
    expect(JSON.parse(m.get('oci-layout')!.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    ociLayers = manifest.layers.map((l: { digest: string }) => l.digest);
  });

  it.skipIf(lacks('skopeo'))('skopeo reads the type=oci archive', () => {
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${oci}`], { encoding: 'utf8' }));
    expect(info.Layers).toEqual(ociLayers);
  });

  it('a warm rebuild reuses the compressed layers; another store compresses them to the same bytes', async () => {
    const records = path.join(root, 'compressed');
    const before = readdirSync(records).map((f) => [f, statSync(path.join(records, f)).mtimeMs]);
    const again = path.join(tempDir(), 'again.tar');
    await ok(root, ['-q', '-t', 'gz:1', '-o', `type=docker,dest=${again}`, ctx], { env: epoch });
    expect(readdirSync(records).map((f) => [f, statSync(path.join(records, f)).mtimeMs])).toEqual(before);
    expect(readFileSync(again).equals(readFileSync(gzTar))).toBe(true);

    const other = tempDir('store-');
    const base = path.join(tempDir(), 'busybox.tar');
    await ok(root, ['save', 'busybox', '-o', base]);
    await ok(other, ['load', base]); // the same base image (an import records when it happened)
    const elsewhere = path.join(tempDir(), 'elsewhere.tar');
    await ok(other, ['-q', '-t', 'gz:1', '-o', `type=docker,dest=${elsewhere}`, ctx], { env: epoch });
    expect(readFileSync(elsewhere).equals(readFileSync(gzTar))).toBe(true);
  });

  it('dest=- writes the same archive to standard output', async () => {
    const r = await execa(process.execPath, [BIN_PATH, '-t', 'gz:1', '-o', 'type=docker,dest=-', ctx], { env: { TSBUILD_ROOT: root, ...epoch }, encoding: 'buffer' });
    expect(Buffer.from(r.stdout).equals(readFileSync(gzTar))).toBe(true);
    expect(Buffer.from(r.stderr).toString()).toContain('exported to standard output');
  });

  it('removes what a killed export left beside its file, not what a running one is writing', async () => {
    const dir = tempDir('out-');
    const dest = path.join(dir, 'image.tar');
    writeFileSync(path.join(dir, '.image.tar.tmp-4242-0badc0de'), 'half an archive, its writer killed');
    const live = path.join(dir, '.image.tar.tmp-4343-0badc0de');
    writeFileSync(live, 'being written');
    const fd = openSync(live, 'r');
    expect(native().tryLock(fd, true)).toBe(true); // as a writer holds it, from any PID namespace
    writeFileSync(path.join(dir, '.other.tar.tmp-4242-0badc0de'), 'not ours to judge');
    try {
      await ok(root, ['-q', '-t', 'gz:1', '-o', dest, ctx]);
    } finally {
      closeSync(fd);
    }
    expect(readdirSync(dir).sort()).toEqual(['.image.tar.tmp-4343-0badc0de', '.other.tar.tmp-4242-0badc0de', 'image.tar']);
  });

  it('a bad -o fails before anything is built, with one line', async () => {
    const fresh = context({ ...files, Dockerfile: `${files.Dockerfile}RUN echo other > /other\n` });
    for (const [spec, message] of [
      ['type=local,dest=out', 'tsbuild: -o type=local is not supported yet (supported: docker, oci, registry)'],
      ['type=docker,dest=x,compression=brotli', 'tsbuild: invalid -o "type=docker,dest=x,compression=brotli": unknown compression "brotli"'],
    ]) {
      const r = await tsbuild(root, ['-t', 'bad', '-o', spec!, fresh]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(message);
    }
    const q = await tsbuild(root, ['-q', '-o', 'type=docker,dest=-', fresh]);
    expect(q.code).toBe(1);
    expect(q.stderr.trim()).toBe('tsbuild: -q prints the image ID on standard output, where -o dest=- writes the archive: use one of them');
    expect(storeLeftovers(root)).toEqual([]);
  });

  it('fsck checks each compressed layer against its layer; prune drops those of removed layers', async () => {
    expect((await ok(root, ['fsck'])).stdout).toContain('is consistent');
    const records = readdirSync(path.join(root, 'compressed')).map((f) => JSON.parse(readFileSync(path.join(root, 'compressed', f), 'utf8')));
    const run = records.find((r) => r.size < 1000)!; // the RUN layer's: one small file
    const blobFile = path.join(root, 'blobs', 'sha256', run.digest.slice(7));
    const good = readFileSync(blobFile);
    const bad = Buffer.from(good);
    bad[bad.length - 9] ^= 0xff;
    writeFileSync(blobFile, bad);
    const r = await tsbuild(root, ['fsck']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`blob ${run.digest} in the store is corrupt`);
    writeFileSync(blobFile, good);

    expect((await ok(root, ['system', 'df'])).stdout).toMatch(/^Compressed Layers +3 /m);
    await ok(root, ['rmi', 'gz:1']);
    await ok(root, ['prune', '--all']);
    expect((await ok(root, ['system', 'df'])).stdout).toMatch(/^Compressed Layers +1 /m);
    const busybox = new Set(JSON.parse((await ok(root, ['inspect', 'busybox'])).stdout)[0].RootFS.Layers);
    for (const rec of records) {
      expect(existsSync(path.join(root, 'blobs', 'sha256', rec.digest.slice(7)))).toBe(busybox.has(rec.diffId));
    }
    expect((await ok(root, ['fsck'])).stdout).toContain('is consistent');
  });
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok, storeLeftovers } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, readJson, tempDir } from '../helpers/fixtures.js';

const DOCKER = '/usr/bin/docker';
const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
/** sha256 by coreutils, independent of tsbuild's own hashing. */
const sha256sum = (file: string) => `sha256:${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;

interface ArchiveManifest {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

describe.skipIf(lacks('root'))('the seed: FROM base + RUN echo "Hello world" > /tmp/newfile', () => {
  const root = tempDir('store-');
  const work = tempDir('seed-');
  const tarball = path.join(work, 'changed-ubuntu.tar');
  const unpacked = path.join(work, 'unpacked');
  let manifest: ArchiveManifest;
  let config: { rootfs: { diff_ids: string[] }; history: Array<{ created_by?: string; empty_layer?: boolean }>; config: { Env?: string[] } };

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo "Hello world" > /tmp/newfile\n' });
    await ok(root, ['-t', 'changed-ubuntu', '-o', tarball, ctx]);
    mkdirSync(unpacked);
    execFileSync('tar', ['-C', unpacked, '-xf', tarball]);
    manifest = readJson<ArchiveManifest[]>(path.join(unpacked, 'manifest.json'))[0]!;
    config = readJson(path.join(unpacked, manifest.Config));
  });

  it('writes a docker-archive that is also an OCI layout', () => {
    for (const f of ['manifest.json', 'repositories', 'oci-layout', 'index.json']) expect(existsSync(path.join(unpacked, f))).toBe(true);
    expect(manifest.RepoTags).toEqual(['changed-ubuntu:latest']);
    const index = readJson<{ manifests: Array<{ digest: string; annotations: Record<string, string> }> }>(path.join(unpacked, 'index.json'));
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe('docker.io/library/changed-ubuntu:latest');
    const ociManifest = readJson<{ config: { digest: string }; layers: Array<{ digest: string }> }>(
      path.join(unpacked, 'blobs/sha256', index.manifests[0]!.digest.slice(7)),
    );
    expect(`blobs/sha256/${ociManifest.config.digest.slice(7)}`).toBe(manifest.Config);
  });

  it('stacks a 12-byte layer holding only /tmp/newfile on the base layer', () => {
    expect(manifest.Layers).toHaveLength(2);
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', path.join(unpacked, manifest.Layers[1]!)], { encoding: 'utf8' });
    expect(listing.trim().split('\n').map((l) => l.split(/\s+/).slice(2).join(' ').replace(/ \S+ \S+ /, ' '))).toEqual(['0 tmp/', '12 tmp/newfile']);
    expect(config.history.filter((h) => !h.empty_layer).map((h) => h.created_by)).toEqual([
      undefined,
      'RUN /bin/sh -c echo "Hello world" > /tmp/newfile # buildkit',
    ]);
  });

  it('names every layer by the sha256 of its bytes, and the image by the sha256 of its config', async () => {
    const files = manifest.Layers.map((l) => path.join(unpacked, l));
    expect(config.rootfs.diff_ids).toEqual(files.map(sha256sum));
    const inspect = JSON.parse((await ok(root, ['inspect', 'changed-ubuntu'])).stdout)[0];
    expect(inspect.Id).toBe(sha256sum(path.join(unpacked, manifest.Config)));
    const [d0, d1] = config.rootfs.diff_ids;
    const chain1 = sha256(`${d0} ${d1}`);
    expect(inspect.Layers.map((l: { ChainID: string }) => l.ChainID)).toEqual([d0, chain1]);
    expect(existsSync(path.join(root, 'layers', chain1!.slice(7), 'diff/tmp/newfile'))).toBe(true);
  });

  it('shows history like docker history, with the RUN layer at 12B', async () => {
    const out = (await ok(root, ['history', 'changed-ubuntu'])).stdout.split('\n');
    expect(out[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(out[1]).toMatch(/^[0-9a-f]{12}\s.*RUN \/bin\/sh -c echo "Hello world" > \/tmp\/new…\s+12B\s+buildkit\.dockerfile\.v0$/);
    expect(out[2]).toMatch(/^<missing>\s.*\s1\.\d+MB\s+Imported from busybox\.tar$/);
  });

  it('lists the images; -q prints only the ID; without -o nothing is written', async () => {
    const images = (await ok(root, ['images'])).stdout;
    expect(images).toMatch(/^changed-ubuntu\s+latest\s+[0-9a-f]{12}\s/m);
    expect(images).toMatch(/^busybox\s+latest\s/m);
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo "Hello world" > /tmp/newfile\n' });
    const quiet = await ok(root, ['build', '-q', '-t', 'again', ctx], { cwd: work });
    expect(quiet.stdout).toMatch(/^sha256:[0-9a-f]{64}$/); // one line (execa drops the final newline)
    expect(quiet.stderr).toBe('');
    expect(storeLeftovers(root)).toEqual([]);
  });

  it('shares the base layer directory between images built on it', async () => {
    const a = JSON.parse((await ok(root, ['inspect', 'changed-ubuntu', 'again'])).stdout);
    expect(a[0].Layers[0].ChainID).toBe(a[1].Layers[0].ChainID);
  });

  it.skipIf(lacks('docker'))('loads into a real dockerd and runs, printing Hello world', () => {
    try {
      execFileSync(DOCKER, ['rmi', '-f', 'changed-ubuntu'], { stdio: 'ignore' });
    } catch {
      // not loaded before
    }
    expect(execFileSync(DOCKER, ['load', '-i', tarball], { encoding: 'utf8' })).toContain('Loaded image: changed-ubuntu:latest');
    expect(execFileSync(DOCKER, ['run', '--rm', 'changed-ubuntu', 'cat', '/tmp/newfile'], { encoding: 'utf8' })).toBe('Hello world\n');
    const history = execFileSync(DOCKER, ['history', '--format', '{{.Size}}', 'changed-ubuntu'], { encoding: 'utf8' });
    expect(history.split('\n')[0]).toBe('12B');
  });

  it.skipIf(lacks('podman', 'skopeo'))('is accepted by podman load and skopeo inspect (docker-archive: and oci-archive:)', () => {
    expect(execFileSync('podman', ['load', '-i', tarball], { encoding: 'utf8' })).toContain('changed-ubuntu');
    for (const transport of ['docker-archive', 'oci-archive']) {
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `${transport}:${tarball}`], { encoding: 'utf8' }));
      expect(info.Layers).toEqual(config.rootfs.diff_ids);
    }
  });

  it('saves an image from the store to the same bytes', async () => {
    const again = path.join(work, 'saved.tar');
    await ok(root, ['save', 'changed-ubuntu', '-o', again]);
    expect(readFileSync(again).equals(readFileSync(tarball))).toBe(true);
  });
});

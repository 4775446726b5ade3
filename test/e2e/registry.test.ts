// Registries end to end: tsbuild pull, push, login, FROM pulls, platforms, compressions, auth, TLS, and a registry that misbehaves.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN_PATH, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { context, tempDir } from '../helpers/fixtures.js';
import { busyboxArchive, makeMultiPlatformIndex, pushTestImage, startProxy, startRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const DOCKER = '/usr/bin/docker';

/** A fresh store and Docker config: a second machine, as far as tsbuild can tell. */
function machine(extraEnv: Record<string, string> = {}) {
  const root = tempDir('store-');
  const env = { DOCKER_CONFIG: tempDir('docker-config-'), ...extraEnv };
  return {
    root,
    env,
    ok: (args: string[]) => ok(root, args, { env }),
    run: (args: string[]) => tsbuild(root, args, { env }),
  };
}

async function skopeoRaw(ref: string, ...flags: string[]): Promise<{ digest: string; manifest: { mediaType: string; layers: Array<{ mediaType: string; digest: string }> } }> {
  const raw = (await run('skopeo', ['inspect', '--raw', ...flags, `docker://${ref}`])).stdout;
  const { createHash } = await import('node:crypto');
  return { digest: `sha256:${createHash('sha256').update(raw).digest('hex')}`, manifest: JSON.parse(raw) };
}

function imageId(root: string, name: string, env: Record<string, string>): Promise<string> {
  return ok(root, ['inspect', name], { env }).then((r) => (JSON.parse(r.stdout) as Array<{ Id: string }>)[0]!.Id);
}

/** Nothing an aborted pull could have left: no image, no layer. */
function storeIsEmpty(root: string): void {
  const images = existsSync(path.join(root, 'images.json')) ? JSON.parse(readFileSync(path.join(root, 'images.json'), 'utf8')) : { images: {} };
  expect(Object.keys(images.images)).toEqual([]);
  expect(existsSync(path.join(root, 'layers')) ? readdirSync(path.join(root, 'layers')) : []).toEqual([]);
}

describe.skipIf(lacks('root', 'skopeo', 'docker'))('registries', () => {
  let archive: string;
  let plain: TestRegistry;

  beforeAll(async () => {
    archive = await busyboxArchive();
    plain = await startRegistry();
    await pushTestImage(plain, archive, 'library/busybox:latest');
  });
  afterAll(() => plain?.stop());

  it('push prints the digest; an empty store pulls the same image back; a second pull downloads nothing', async () => {
    const a = machine();
    await a.ok(['load', archive]);
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo made > /made\nCMD ["cat", "/made"]\n' });
    await a.ok(['build', '-q', '-t', 'app:1', dir]);
    const pushed = await a.ok(['push', 'app:1', `${plain.host}/me/app:1`]);
    const line = /^1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m.exec(pushed.stdout);
    expect(line, pushed.stdout).not.toBeNull();
    const { digest, manifest } = await skopeoRaw(`${plain.host}/me/app:1`, '--tls-verify=false');
    expect(digest).toBe(line![1]);
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(true);

    const b = machine();
    const pulled = await b.ok(['pull', `${plain.host}/me/app:1`]);
    expect(pulled.stdout).toContain(`Digest: ${digest}`);
    expect(pulled.stdout).toContain(`Status: Downloaded newer image for ${plain.host}/me/app:1`);
    expect(await imageId(b.root, `${plain.host}/me/app:1`, b.env)).toBe(await imageId(a.root, 'app:1', a.env));
    await b.ok(['tag', `${plain.host}/me/app:1`, 'renamed:2']);
    expect(await imageId(b.root, 'renamed:2', b.env)).toBe(await imageId(a.root, 'app:1', a.env));
    const again = await b.ok(['pull', `${plain.host}/me/app:1`]);
    expect(again.stdout).toMatch(/: Already exists$/m);
    expect(again.stdout).toContain('Status: Image is up to date');
    // by digest too, from the store
    await b.ok(['inspect', `${plain.host}/me/app@${digest}`]);
    // pulled by digest alone: listed under its repository without a tag, removed by that digest
    const c = machine();
    await c.ok(['pull', `${plain.host}/me/app@${digest}`]);
    expect((await c.ok(['images'])).stdout).toMatch(new RegExp(`^${plain.host.replace(/\./g, '\\.')}/me/app\\s+<none>\\s`, 'm'));
    expect((await c.ok(['rmi', `${plain.host}/me/app@${digest}`])).stdout).toContain(`Untagged: ${plain.host}/me/app@${digest}`);
    expect((await c.ok(['images'])).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('builds FROM an image only the registry has, pushes the result, and docker pulls and runs it', async () => {
    const m = machine();
    const dir = context({ Dockerfile: `FROM ${plain.host}/library/busybox:latest\nRUN echo from-the-registry > /said\nCMD ["cat", "/said"]\n` });
    const built = await m.ok(['build', '--progress', 'plain', '-t', `${plain.host}/me/ran:1`, '--push', dir]);
    expect(built.stderr).toContain(`[internal] load metadata for ${plain.host}/library/busybox:latest`);
    expect(built.stderr).toMatch(new RegExp(`FROM ${plain.host.replace(/\./g, '\\.')}/library/busybox:latest@sha256:[0-9a-f]{64}`));
    expect(built.stderr).toMatch(/#\d+ sha256:[0-9a-f]{64} [\d.]+[kM]?B \/ [\d.]+[kM]?B [\d.]+s done/);
    expect(built.stderr).toMatch(/pushing .*me\/ran:1 with digest sha256:[0-9a-f]{64} done/);
    await run(DOCKER, ['rmi', '-f', `${plain.host}/me/ran:1`]).catch(() => undefined);
    await run(DOCKER, ['pull', '-q', `${plain.host}/me/ran:1`]);
    const out = await run(DOCKER, ['run', '--rm', `${plain.host}/me/ran:1`]);
    expect(out.stdout.trim()).toBe('from-the-registry');
    await run(DOCKER, ['rmi', '-f', `${plain.host}/me/ran:1`]).catch(() => undefined);
  });

  it('stages FROM the same registry image share one metadata step and one pull', async () => {
    const src = `${plain.host}/library/busybox:latest`;
    const dir = context({ Dockerfile: `FROM ${src} AS one\nRUN echo 1 > /one\nFROM ${src} AS two\nRUN echo 2 > /two\nFROM ${src}\nCOPY --from=one /one /one\nCOPY --from=two /two /two\n` });
    const r = await machine().ok(['build', '--progress', 'plain', dir]);
    expect(r.stderr.match(/load metadata for /g)).toHaveLength(1);
    expect(r.stderr.match(/#\d+ sha256:[0-9a-f]{64} .* done$/gm)).toHaveLength(1);
  });

  it('COPY --from and RUN --mount=from= an image only the registry has pull it too', async () => {
    const m = machine();
    await m.ok(['load', archive]);
    const src = `${plain.host}/library/busybox:latest`;
    const dir = context({ Dockerfile: `FROM busybox\nCOPY --from=${src} /bin/busybox /copied\nRUN --mount=from=${src},target=/src cmp /src/bin/busybox /copied && echo same > /same\n` });
    await m.ok(['build', '-q', '-t', 'from-image:1', dir]);
    const pulled = JSON.parse((await m.ok(['inspect', src])).stdout)[0];
    expect(pulled.RepoTags).toContain(src);
    expect(pulled.RepoDigests).toEqual([expect.stringMatching(new RegExp(`^${plain.host.replace(/\./g, '\\.')}/library/busybox@sha256:[0-9a-f]{64}$`))]);
  });

  it('a tag that moved is used as stored until --pull checks it again', async () => {
    const m = machine();
    await m.ok(['load', archive]);
    const ref = `${plain.host}/moving/base:1`;
    await m.ok(['build', '-q', '-t', ref, '--push', context({ Dockerfile: 'FROM busybox\nRUN echo one > /version\n' })]);
    const n = machine();
    const dir = context({ Dockerfile: `FROM ${ref}\nRUN cp /version /seen\n` });
    const first = await n.ok(['build', '-q', dir]);
    await m.ok(['build', '-q', '-t', ref, '--push', context({ Dockerfile: 'FROM busybox\nRUN echo two > /version\n' })]);
    expect((await n.ok(['build', '-q', dir])).stdout).toBe(first.stdout); // the stored base: nothing asked of the registry
    const pulled = await n.ok(['build', '--pull', '--progress', 'plain', dir]);
    expect(pulled.stderr).toContain(`[internal] load metadata for ${ref}`);
    const out = await n.ok(['build', '-q', '-f', path.join(context({ Dockerfile: `FROM ${ref}\nRUN cat /version\n` }), 'Dockerfile'), dir]);
    expect(out.code).toBe(0);
    const version = JSON.parse((await n.ok(['inspect', ref])).stdout)[0].Id;
    expect(version).toBe(await imageId(m.root, ref, m.env));
  });

  it('a layer another repository of the registry has is mounted, one the repository has is skipped', async () => {
    const m = machine();
    await m.ok(['pull', `${plain.host}/library/busybox:latest`]);
    const dir = context({ Dockerfile: `FROM ${plain.host}/library/busybox:latest\nRUN echo x > /x\n` });
    await m.ok(['build', '-q', '-t', 'mounted:1', dir]);
    const first = await m.ok(['push', 'mounted:1', `${plain.host}/other/mounted:1`]);
    expect(first.stdout).toMatch(/: Mounted from library\/busybox$/m);
    expect(first.stdout).toMatch(/: Pushed$/m);
    const second = await m.ok(['push', 'mounted:1', `${plain.host}/other/mounted:2`]);
    expect(second.stdout.match(/: Layer already exists$/gm)).toHaveLength(2);
  });

  it('picks the platform asked for from a multi-platform index; TARGETARCH and the image follow --platform', async () => {
    await makeMultiPlatformIndex(plain, 'multi/busybox:1', [
      { archive, platform: 'linux/amd64' },
      { archive, platform: 'linux/arm64' },
    ]);
    const m = machine();
    await m.ok(['pull', '--platform', 'linux/arm64', `${plain.host}/multi/busybox:1`]);
    const arm = JSON.parse((await m.ok(['inspect', `${plain.host}/multi/busybox:1`])).stdout)[0];
    expect(arm.Architecture).toBe('arm64');
    const dir = context({ Dockerfile: `FROM ${plain.host}/multi/busybox:1\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n` });
    const n = machine();
    await n.ok(['build', '-q', '-t', 'amd:1', dir]);
    expect(JSON.parse((await n.ok(['inspect', 'amd:1'])).stdout)[0].Architecture).toBe('amd64');
    await n.ok(['build', '-q', '--platform', 'linux/arm64', '-t', 'arm:1', dir]);
    expect(JSON.parse((await n.ok(['inspect', 'arm:1'])).stdout)[0].Architecture).toBe('arm64');
    await n.ok(['build', '-q', '--platform', 'linux/arm64', '-o', path.join(n.root, 'arm.tar'), '-t', 'arm:1', dir]);
    const listing = (await run('tar', ['-xOf', path.join(n.root, 'arm.tar'), 'manifest.json'])).stdout;
    expect(listing).toContain('arm:1');
    await n.ok(['build', '-q', '--platform', 'linux/arm64', '-t', 'scratch-arm:1', context({ Dockerfile: 'FROM scratch\nCOPY Dockerfile /\n' })]);
    expect(JSON.parse((await n.ok(['inspect', 'scratch-arm:1'])).stdout)[0].Architecture).toBe('arm64');
    const none = await n.run(['pull', '--platform', 'linux/s390x', `${plain.host}/multi/busybox:1`]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toMatch(/no image for linux\/s390x in the manifest list \(it has linux\/amd64, linux\/arm64\)$/);
  });

  it('pulls gzip, zstd and uncompressed layers to the same layers; push compression=zstd and uncompressed', async () => {
    const ids = new Set<string>();
    const diffIds = (root: string, name: string, env: Record<string, string>) =>
      ok(root, ['inspect', name], { env }).then((r) => JSON.stringify((JSON.parse(r.stdout) as Array<{ RootFS: unknown }>)[0]!.RootFS));
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      await pushTestImage(plain, archive, `compressed/${compression}:1`, { compression, ...(compression === 'zstd' ? { format: 'oci' as const } : {}) });
      const { manifest } = await skopeoRaw(`${plain.host}/compressed/${compression}:1`, '--tls-verify=false');
      expect(manifest.layers[0]!.mediaType).toMatch(compression === 'gzip' ? /gzip$/ : compression === 'zstd' ? /zstd$/ : /tar$/);
      const m = machine();
      await m.ok(['pull', `${plain.host}/compressed/${compression}:1`]);
      ids.add(await diffIds(m.root, `${plain.host}/compressed/${compression}:1`, m.env));
    }
    expect(ids.size).toBe(1); // skopeo's OCI conversion rewrites the config: the layers are what must agree
    const m = machine();
    await m.ok(['load', archive]);
    for (const compression of ['zstd', 'uncompressed']) {
      await m.ok(['push', '--compression', compression, 'busybox', `${plain.host}/pushed/${compression}:1`]);
      const { manifest } = await skopeoRaw(`${plain.host}/pushed/${compression}:1`, '--tls-verify=false');
      expect(manifest.layers[0]!.mediaType).toBe(compression === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.docker.image.rootfs.diff.tar');
      const n = machine();
      await n.ok(['pull', `${plain.host}/pushed/${compression}:1`]);
      expect(await imageId(n.root, `${plain.host}/pushed/${compression}:1`, n.env)).toBe(await imageId(m.root, 'busybox', m.env));
      expect(await diffIds(n.root, `${plain.host}/pushed/${compression}:1`, n.env)).toBe([...ids][0]);
    }
    // skopeo reads what tsbuild pushed with zstd
    const copied = tempDir('skopeo-copy-');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${plain.host}/pushed/zstd:1`, `oci:${copied}:x`]);
  });

  it('-o type=registry pushes with BuildKit\'s exporter options', async () => {
    const m = machine();
    await m.ok(['load', archive]);
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo o > /o\n' });
    await m.ok(['build', '-q', '-o', `type=registry,name=${plain.host}/out/app:1,compression=zstd`, dir]);
    const { manifest } = await skopeoRaw(`${plain.host}/out/app:1`, '--tls-verify=false');
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
  });

  it('FROM a repository or tag the registry lacks: one line on the FROM line; the store untouched', async () => {
    const m = machine();
    const dir = context({ Dockerfile: `FROM busybox AS unused\nFROM ${plain.host}/library/busybox:nope\n` });
    const r = await m.run(['build', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^tsbuild: .*Dockerfile:2: failed to resolve source metadata for ${plain.host.replace(/\./g, '\\.')}/library/busybox:nope: .*not found: manifest unknown$`));
    const pull = await m.run(['pull', `${plain.host}/no/such:1`]);
    expect(pull.code).toBe(1);
    expect(pull.stderr.trim()).toMatch(/^tsbuild: .*no\/such:1: not found: (name|manifest) unknown/);
    storeIsEmpty(m.root);
  });

  it('--registry-mirror serves Docker Hub names: FROM busybox from a loopback mirror', async () => {
    const m = machine();
    const dir = context({ Dockerfile: 'FROM busybox:latest\nRUN echo mirrored > /m\n' });
    await m.ok(['build', '-q', '--registry-mirror', `http://${plain.host}`, '-t', 'mirrored:1', dir]);
    const images = (await m.ok(['images'])).stdout;
    expect(images).toMatch(/^busybox\s+latest\s/m);
  });

  describe('build cache shared through the registry', () => {
    // the builder stage's RUN is slow and random: a hit is the only way to get the same bytes back
    const files = {
      Dockerfile: [
        `FROM busybox AS builder`,
        `RUN head -c 16 /dev/urandom | od -An -tx1 > /built && touch /side && echo built-it`,
        `FROM busybox`,
        `COPY --from=builder /built /built`,
        `RUN cp /built /final && echo finished-it`,
        '',
      ].join('\n'),
    };
    const layersIn = (root: string) => readdirSync(path.join(root, 'layers')).length;
    /** Whether a step printed `word` (its output line, not its title): whether it ran. */
    const ran = (stderr: string, word: string) => new RegExp(`^#\\d+ [\\d.]+ ${word}$`, 'm').test(stderr);

    it('--cache-to type=registry,mode=max on one machine; --cache-from on an empty one runs no step and fetches only the layers it needs', async () => {
      const a = machine();
      await a.ok(['load', archive]);
      const dir = context(files);
      const ref = `${plain.host}/cache/app:buildcache`;
      const first = await a.ok(['build', '--progress', 'plain', '-t', 'app:1', '--cache-to', `type=registry,ref=${ref},mode=max`, dir]);
      expect(ran(first.stderr, 'built-it')).toBe(true);
      expect(first.stderr).toMatch(new RegExp(`exporting cache to ${ref.replace(/\./g, '\\.')}\n#\\d+ writing cache manifest sha256:[0-9a-f]{64} done`));
      const { manifest } = await skopeoRaw(ref, '--tls-verify=false');
      expect(manifest).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.buildkit.cacheconfig.v0' } });

      const b = machine();
      await b.ok(['load', archive]);
      const second = await b.ok(['build', '--progress', 'plain', '-t', 'app:1', '--cache-from', `type=registry,ref=${ref}`, dir]);
      expect(second.stderr).toContain(`importing cache manifest from ${ref}`);
      expect(ran(second.stderr, 'built-it')).toBe(false);
      expect(ran(second.stderr, 'finished-it')).toBe(false);
      expect(second.stderr.match(/CACHED/g)).toHaveLength(3);
      expect(await imageId(b.root, 'app:1', b.env)).toBe(await imageId(a.root, 'app:1', a.env));
      // busybox, the COPY and the final RUN: the builder stage's layer was never needed
      expect(layersIn(b.root)).toBe(3);
      // a runner that imports and exports the same ref (the README's CI job) re-exports the
      // builder stage's layer without fetching it: mounted or skipped in the registry
      const c2 = machine();
      await c2.ok(['load', archive]);
      const both = await c2.ok(['build', '--progress', 'plain', '-t', 'app:1', '--cache-from', ref, '--cache-to', `type=registry,ref=${ref},mode=max`, dir]);
      expect(ran(both.stderr, 'built-it')).toBe(false);
      expect(layersIn(c2.root)).toBe(3);
      const d = machine();
      await d.ok(['load', archive]);
      const fromReexport = await d.ok(['build', '--progress', 'plain', '--target', 'builder', '--cache-from', ref, dir]);
      expect(ran(fromReexport.stderr, 'built-it')).toBe(false);
      // the builder stage as the target: its layer is fetched now, and filed in this store's cache
      const target = await b.ok(['build', '--progress', 'plain', '--target', 'builder', '-t', 'builder:1', '--cache-from', `type=registry,ref=${ref}`, dir]);
      expect(ran(target.stderr, 'built-it')).toBe(false);
      expect(layersIn(b.root)).toBe(4);
      const local = await b.ok(['build', '--progress', 'plain', '--target', 'builder', '-t', 'builder:1', dir]);
      expect(ran(local.stderr, 'built-it')).toBe(false);
      const out = await b.ok(['build', '-q', dir.replace(/$/, ''), '-f', path.join(context({ Dockerfile: 'FROM app:1\nRUN cat /final\n' }), 'Dockerfile')]);
      expect(out.code).toBe(0);

      // mode=min (the default) carries the final image's steps only: the builder stage runs again
      const minRef = `${plain.host}/cache/app:min`;
      await a.ok(['build', '-q', '-t', 'app:1', '--cache-to', minRef, dir]);
      const c = machine();
      await c.ok(['load', archive]);
      const third = await c.ok(['build', '--progress', 'plain', '-t', 'app:1', '--cache-from', minRef, dir]);
      expect(ran(third.stderr, 'built-it')).toBe(true);
    });

    it('type=local for CI systems that keep a directory; type=inline inside the pushed image', async () => {
      const a = machine();
      await a.ok(['load', archive]);
      const dir = context(files);
      const cacheDir = path.join(tempDir('ci-cache-'), 'cache');
      await a.ok(['build', '-q', '-t', 'app:1', '--cache-to', `type=local,dest=${cacheDir},mode=max`, dir]);
      const index = JSON.parse(readFileSync(path.join(cacheDir, 'index.json'), 'utf8'));
      expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('latest');
      const b = machine();
      await b.ok(['load', archive]);
      const local = await b.ok(['build', '--progress', 'plain', '-t', 'app:1', '--cache-from', `type=local,src=${cacheDir}`, dir]);
      expect(ran(local.stderr, 'built-it')).toBe(false);
      expect(await imageId(b.root, 'app:1', b.env)).toBe(await imageId(a.root, 'app:1', a.env));

      const image = `${plain.host}/inline/app:1`;
      const single = context({ Dockerfile: 'FROM busybox\nRUN head -c 16 /dev/urandom > /r && echo ran-it\nRUN echo second-too > /s && echo second-it\n' });
      await a.ok(['build', '-q', '-t', image, '--push', '--cache-to', 'type=inline', single]);
      const config = JSON.parse((await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${image}`])).stdout);
      expect(typeof config['moby.buildkit.cache.v0']).toBe('string');
      const c = machine();
      await c.ok(['load', archive]);
      const inline = await c.ok(['build', '--progress', 'plain', '-t', image, '--cache-from', image, '--cache-to', 'type=inline', single]);
      expect(ran(inline.stderr, 'ran-it')).toBe(false);
      expect(ran(inline.stderr, 'second-it')).toBe(false);
      expect(await imageId(c.root, image, c.env)).toBe(await imageId(a.root, image, a.env));
    });

    it('a cache that cannot be read is a warning, not a failure', async () => {
      const m = machine();
      await m.ok(['load', archive]);
      const r = await m.ok(['build', '--progress', 'plain', '--cache-from', `${plain.host}/cache/none:1`, context(files)]);
      expect(r.stderr).toMatch(/WARNING: cache import from .*none:1 failed: .*not found/);
    });
  });

  describe('a hostile registry', () => {
    it('a manifest naming another blob for a layer the store has is not believed: push never mounts that blob', async () => {
      const api = (p: string, init?: RequestInit) => fetch(`${plain.url}${p}`, init);
      const real = await (await api('/v2/library/busybox/manifests/latest', { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json();
      const { gzipSync } = await import('node:zlib');
      const { createHash } = await import('node:crypto');
      const evilBlob = gzipSync(Buffer.from('not the layer the config names'));
      const evilDigest = `sha256:${createHash('sha256').update(evilBlob).digest('hex')}`;
      const start = await api('/v2/evil/img/blobs/uploads/', { method: 'POST' });
      const loc = new URL(start.headers.get('location')!, plain.url);
      loc.searchParams.set('digest', evilDigest);
      expect((await fetch(loc, { method: 'PUT', body: evilBlob, headers: { 'Content-Type': 'application/octet-stream' } })).status).toBe(201);
      await api(`/v2/evil/img/blobs/uploads/?mount=${real.config.digest}&from=library/busybox`, { method: 'POST' });
      const evil = { ...real, layers: [{ ...real.layers[0], digest: evilDigest, size: evilBlob.length }] };
      expect((await api('/v2/evil/img/manifests/1', { method: 'PUT', body: JSON.stringify(evil), headers: { 'Content-Type': real.mediaType } })).status).toBe(201);

      const m = machine();
      await m.ok(['pull', `${plain.host}/library/busybox:latest`]);
      expect((await m.ok(['pull', `${plain.host}/evil/img:1`])).stdout).toMatch(/: Already exists$/m);
      const pushed = await m.ok(['push', `${plain.host}/evil/img:1`, `${plain.host}/me/poisoned:1`]);
      expect(pushed.stdout).not.toContain('evil/img');
      const { manifest } = await skopeoRaw(`${plain.host}/me/poisoned:1`, '--tls-verify=false');
      expect(manifest.layers[0]!.digest).toBe(real.layers[0].digest);
    });

    it('a 401 from the host a blob is redirected to is not answered with the registry\'s credentials', async () => {
      const seen: string[] = [];
      const realm = http.createServer((req, res) => {
        seen.push(`${req.url} ${req.headers.authorization ?? ''}`);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"t"}');
      });
      const storage = http.createServer((_req, res) => {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://127.0.0.3:${(realm.address() as AddressInfo).port}/token"` }).end();
      });
      await new Promise<void>((r) => realm.listen(0, '127.0.0.3', r));
      await new Promise<void>((r) => storage.listen(0, '127.0.0.2', r));
      const registry = http.createServer(async (req, res) => {
        if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`) return void res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' }).end();
        if (req.url === '/v2/') return void res.writeHead(200).end('{}');
        const upstream = await fetch(`${plain.url}${req.url!.replace('/v2/x/', '/v2/library/busybox/')}`, { headers: { Accept: String(req.headers.accept ?? '') } });
        if (/\/blobs\//.test(req.url!)) return void res.writeHead(307, { Location: `http://127.0.0.2:${(storage.address() as AddressInfo).port}/blob` }).end();
        res.writeHead(upstream.status, { 'Content-Type': upstream.headers.get('content-type') ?? '' }).end(Buffer.from(await upstream.arrayBuffer()));
      });
      await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
      try {
        const host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
        const m = machine();
        writeFileSync(path.join(m.env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
        const r = await m.run(['pull', `${host}/x:latest`]);
        expect(r.code).toBe(1);
        expect(r.stderr).not.toContain('s3cret');
        expect(seen).toEqual([]);
      } finally {
        for (const s of [realm, storage, registry]) s.close();
      }
    });
  });

  describe('a registry that misbehaves', () => {
    let layerDigest: string;
    beforeAll(async () => {
      const { manifest } = await skopeoRaw(`${plain.host}/library/busybox:latest`, '--tls-verify=false');
      layerDigest = manifest.layers[0]!.digest;
    });

    it('a tampered blob is refused, and nothing lands in the store', async () => {
      const proxy = await startProxy(plain.url, { tamperBlob: layerDigest });
      try {
        const m = machine();
        const r = await m.run(['pull', `${proxy.host}/library/busybox:latest`]);
        expect(r.code).toBe(1);
        // refused by the digest, or (a flipped byte may break the compression first) as corrupt
        expect(r.stderr.trim()).toMatch(new RegExp(`^tsbuild: (blob|layer) ${layerDigest} of \\S+ (does not match its digest \\(got sha256:[0-9a-f]{64}\\)|is corrupt: .*): refused$`));
        storeIsEmpty(m.root);
      } finally {
        await proxy.stop();
      }
    });

    it('a tampered manifest is refused', async () => {
      const proxy = await startProxy(plain.url, { tamperManifest: true });
      try {
        const m = machine();
        const r = await m.run(['pull', `${proxy.host}/library/busybox:latest`]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toMatch(/^tsbuild: manifest .*busybox:latest does not match its digest: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}$/);
        storeIsEmpty(m.root);
      } finally {
        await proxy.stop();
      }
    });

    it('a download cut off midway resumes where it stopped (Range)', async () => {
      const proxy = await startProxy(plain.url, { dropBlobAfterBytes: 100_000 });
      try {
        const m = machine();
        await m.ok(['pull', `${proxy.host}/library/busybox:latest`]);
        const ranged = proxy.requests.filter((r) => r.path.endsWith(layerDigest) && r.headers.range);
        expect(ranged.length).toBeGreaterThanOrEqual(1);
        expect(Number(/bytes=(\d+)-/.exec(String(ranged[0]!.headers.range))![1])).toBeGreaterThan(0);
        await m.ok(['fsck']);
      } finally {
        await proxy.stop();
      }
    });

    it('503s are retried with backoff; past the bound, one line', async () => {
      const flaky = await startProxy(plain.url, { status: { path: /\/manifests\//, codes: [503, 503] } });
      const down = await startProxy(plain.url, { status: { path: /\/manifests\//, codes: Array(10).fill(503) } });
      try {
        await machine().ok(['pull', `${flaky.host}/library/busybox:latest`]);
        const m = machine();
        const r = await m.run(['pull', `${down.host}/library/busybox:latest`]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toMatch(/^tsbuild: .*busybox:latest: 127\.0\.0\.1:\d+ answered 503/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      } finally {
        await flaky.stop();
        await down.stop();
      }
    });

    it('a redirect loop is one line', async () => {
      const server = http.createServer((req, res) => {
        if (req.url === '/v2/') res.writeHead(200).end('{}');
        else res.writeHead(302, { Location: req.url }).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const r = await machine().run(['pull', `127.0.0.1:${(server.address() as AddressInfo).port}/loop/x:1`]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toMatch(/^tsbuild: GET \/v2\/loop\/x\/manifests\/1 on 127\.0\.0\.1:\d+: redirect loop/);
      } finally {
        server.close();
      }
    });

    it('an unreachable registry is one line', async () => {
      const r = await machine().run(['pull', '127.0.0.1:9/x:1']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe('tsbuild: cannot reach 127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9');
    });
  });

  describe('basic auth over TLS with a certs.d CA', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ tls: true, auth: 'basic' });
      await pushTestImage(reg, archive, 'team/busybox:1');
    });
    afterAll(() => reg?.stop());

    it('login checks and saves; pull and push use the saved credentials; logout removes them', async () => {
      const m = machine({ TSBUILD_CERTS_D: reg.certsDir! });
      const anonymous = await m.run(['pull', `${reg.host}/team/busybox:1`]);
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr.trim()).toMatch(/denied|credentials/);
      const wrong = await m.run(['login', '-u', reg.user!, '-p', 'wrong-password', reg.host]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).not.toContain('wrong-password');
      expect(existsSync(path.join(m.env.DOCKER_CONFIG, 'config.json'))).toBe(false);
      const login = await execa(process.execPath, [BIN_PATH, 'login', '-u', reg.user!, '--password-stdin', reg.host], { input: `${reg.password}\n`, env: { TSBUILD_ROOT: m.root, ...m.env } });
      expect(login.stdout).toBe('Login Succeeded');
      const config = JSON.parse(readFileSync(path.join(m.env.DOCKER_CONFIG, 'config.json'), 'utf8'));
      expect(Buffer.from(config.auths[reg.host].auth, 'base64').toString()).toBe(`${reg.user}:${reg.password}`);
      await m.ok(['pull', `${reg.host}/team/busybox:1`]);
      await m.ok(['push', `${reg.host}/team/busybox:1`, `${reg.host}/team/again:1`]);
      // nothing of the password in the store
      const { stdout } = await run('grep', ['-rl', reg.password!, m.root]).catch(() => ({ stdout: '' }));
      expect(stdout).toBe('');
      expect((await m.ok(['logout', reg.host])).stdout).toContain(`Removing login credentials for ${reg.host}`);
      expect((await m.run(['pull', `${reg.host}/team/again:1`])).code).toBe(1);
    });

    it('without the CA in certs.d, TLS fails', async () => {
      const m = machine({ TSBUILD_CERTS_D: tempDir('empty-certs-') });
      const r = await m.run(['pull', `${reg.host}/team/busybox:1`]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(/^tsbuild: cannot reach 127\.0\.0\.1:\d+: .*(self.signed|certificate|issuer).* \(to trust a private CA, put it in .*\/127\.0\.0\.1:\d+\/ca\.crt\)$/i);
    });

    it('--insecure-registry takes the certificate unverified', async () => {
      const m = machine({ TSBUILD_CERTS_D: tempDir('empty-certs-') });
      await m.ok(['login', '--insecure-registry', reg.host, '-u', reg.user!, '-p', reg.password!, reg.host]);
      await m.ok(['pull', '--insecure-registry', reg.host, `${reg.host}/team/busybox:1`]);
    });

    it('Docker\'s config written by hand (auths) is enough, as after docker login', async () => {
      const m = machine({ TSBUILD_CERTS_D: reg.certsDir! });
      writeFileSync(path.join(m.env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }));
      await m.ok(['pull', `${reg.host}/team/busybox:1`]);
    });
  });

  describe('TLS that requires a client certificate', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ clientAuth: true });
      await pushTestImage(reg, archive, 'certs/busybox:1');
    });
    afterAll(() => reg?.stop());

    it('sends certs.d\'s client.cert and client.key; without them the registry refuses', async () => {
      await machine({ TSBUILD_CERTS_D: reg.certsDir! }).ok(['pull', `${reg.host}/certs/busybox:1`]);
      const onlyCa = tempDir('ca-only-');
      const { mkdirSync, copyFileSync } = await import('node:fs');
      mkdirSync(path.join(onlyCa, reg.host));
      copyFileSync(path.join(reg.certsDir!, reg.host, 'ca.crt'), path.join(onlyCa, reg.host, 'ca.crt'));
      const r = await machine({ TSBUILD_CERTS_D: onlyCa }).run(['pull', `${reg.host}/certs/busybox:1`]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(/^tsbuild: cannot reach 127\.0\.0\.1:\d+: .*bad certificate \(the registry refused the client certificate: put client\.cert and client\.key in .*\)$/);
    });
  });

  describe('the bearer-token flow', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ auth: 'token', anonymousPull: true });
      await pushTestImage(reg, archive, 'library/busybox:latest');
    });
    afterAll(() => reg?.stop());

    it('anonymous pull; push with a token scoped for push; tokens reused across requests', async () => {
      const m = machine();
      reg.tokenRequests!.length = 0;
      await m.ok(['pull', `${reg.host}/library/busybox:latest`]);
      expect(reg.tokenRequests!.map((t) => t.query.scope)).toEqual(['repository:library/busybox:pull']);
      expect(reg.tokenRequests!.every((t) => !t.authorized)).toBe(true);
      const denied = await m.run(['push', `${reg.host}/library/busybox:latest`, `${reg.host}/me/app:1`]);
      expect(denied.code).toBe(1);
      expect(denied.stderr.trim().split('\n')).toHaveLength(1);
      reg.tokenRequests!.length = 0;
      await m.ok(['login', '-u', reg.user!, '-p', reg.password!, reg.host]);
      await m.ok(['push', `${reg.host}/library/busybox:latest`, `${reg.host}/me/app:1`]);
      const scopes = reg.tokenRequests!.map((t) => t.query.scope ?? '');
      expect(scopes).toContain('repository:me/app:pull,push');
      expect(reg.tokenRequests!.filter((t) => t.query.scope === 'repository:me/app:pull,push')).toHaveLength(1);
      expect(reg.tokenRequests!.every((t) => t.authorized)).toBe(true);
    });

    it('a redirected blob download carries no credentials', async () => {
      const m = machine();
      const proxy = await startProxy(reg.url, { redirectBlobsTo: 'self-alt-host' });
      try {
        await m.ok(['login', '-u', reg.user!, '-p', reg.password!, proxy.host]);
        await m.ok(['pull', `${proxy.host}/library/busybox:latest`]);
        expect(proxy.redirected.length).toBeGreaterThanOrEqual(2); // config and layer
        expect(proxy.redirected.every((r) => r.authorization === undefined)).toBe(true);
        expect(proxy.requests.some((r) => /\/blobs\//.test(r.path) && r.headers.authorization)).toBe(true);
      } finally {
        await proxy.stop();
      }
    });
  });
});

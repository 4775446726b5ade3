// The registry fixtures (test/helpers/registry.ts) checked with curl and skopeo as the clients.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lacks } from '../helpers/env.js';
import { tempDir } from '../helpers/fixtures.js';
import { busyboxArchive, makeMultiPlatformIndex, pushTestImage, startProxy, startRegistry, type RegistryOptions, type TestProxy, type TestRegistry } from '../helpers/registry.js';

// async: the token server and the proxy run in this process
const run = promisify(execFile);
const work = tempDir('registry-fixtures-');
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Exchange {
  /** curl's exit code */
  code: number;
  /** the last response's status */
  status: number;
  headers: string;
  body: Buffer;
}

let calls = 0;

async function curl(...args: string[]): Promise<Exchange> {
  const out = path.join(work, `curl-${++calls}`);
  const code = await run('curl', ['-sS', '-D', `${out}.headers`, '-o', `${out}.body`, ...args]).then(
    () => 0,
    (e: { code: number }) => e.code,
  );
  const headers = existsSync(`${out}.headers`) ? readFileSync(`${out}.headers`, 'utf8') : '';
  const status = Number([...headers.matchAll(/^HTTP\/[\d.]+ (\d+)/gm)].at(-1)?.[1] ?? 0);
  return { code, status, headers, body: existsSync(`${out}.body`) ? readFileSync(`${out}.body`) : Buffer.alloc(0) };
}

function header(exchange: Exchange, name: string): string | undefined {
  return new RegExp(`^${name}: (.*?)\\r?$`, 'im').exec(exchange.headers)?.[1];
}

async function skopeo(...args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return run('skopeo', args).then(
    (r) => ({ ok: true, stdout: r.stdout, stderr: r.stderr }),
    (e: { stdout: string; stderr: string }) => ({ ok: false, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Every registry these tests start, to check none is left running. */
const started: TestRegistry[] = [];

async function registry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const reg = await startRegistry(opts);
  started.push(reg);
  return reg;
}

describe.skipIf(lacks('root', 'skopeo'))('the registry fixtures', () => {
  let archive: string;

  beforeAll(async () => {
    archive = await busyboxArchive(work);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  describe('a plain HTTP registry', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry();
    });
    afterAll(() => reg.stop());

    it('takes an anonymous skopeo push and answers skopeo inspect with the pushed digest', async () => {
      const digest = await pushTestImage(reg, archive, 'test/busybox:1');
      const r = await skopeo('inspect', '--tls-verify=false', `docker://${reg.host}/test/busybox:1`);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toMatchObject({ Digest: digest, RepoTags: ['1'], Os: 'linux' });
    });

    it('seeds OCI images with zstd layers, and images with uncompressed ones', async () => {
      await pushTestImage(reg, archive, 'test/busybox:zstd', { compression: 'zstd' });
      await pushTestImage(reg, archive, 'test/busybox:plain', { format: 'oci', compression: 'none' });
      const layerTypes = async (tag: string) => {
        const r = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/busybox:${tag}`);
        return JSON.parse(r.stdout).layers.map((l: { mediaType: string }) => l.mediaType);
      };
      expect(await layerTypes('zstd')).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);
      expect(await layerTypes('plain')).toEqual(['application/vnd.oci.image.layer.v1.tar']);
      expect(await layerTypes('1')).toEqual(['application/vnd.docker.image.rootfs.diff.tar.gzip']);
      const pulled = await skopeo('copy', '-q', '--insecure-policy', '--src-tls-verify=false', `docker://${reg.host}/test/busybox:zstd`, `dir:${path.join(work, 'zstd')}`);
      expect(pulled.stderr).toBe('');
    });
  });

  describe('basic auth', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry({ auth: 'basic' });
    });
    afterAll(() => reg.stop());

    it('answers 401 with a Basic challenge without credentials or with wrong ones, 200 with the right ones', async () => {
      const anonymous = await curl(`${reg.url}/v2/`);
      expect(anonymous.status).toBe(401);
      expect(header(anonymous, 'www-authenticate')).toMatch(/^Basic realm=/);
      expect((await curl('-u', `${reg.user}:wrong`, `${reg.url}/v2/`)).status).toBe(401);
      expect((await curl('-u', `${reg.user}:${reg.password}`, `${reg.url}/v2/`)).status).toBe(200);
    });

    it('takes a push with --dest-creds', async () => {
      const digest = await pushTestImage(reg, archive, 'test/busybox:1');
      const r = await skopeo('inspect', '--tls-verify=false', '--creds', `${reg.user}:${reg.password}`, `docker://${reg.host}/test/busybox:1`);
      expect(JSON.parse(r.stdout).Digest).toBe(digest);
    });
  });

  describe('TLS', () => {
    let reg: TestRegistry;
    let strict: TestRegistry;
    beforeAll(async () => {
      [reg, strict] = await Promise.all([registry({ tls: true }), registry({ clientAuth: true, auth: 'basic' })]);
    });
    afterAll(() => Promise.all([reg.stop(), strict.stop()]));

    it('lays out a Docker certs.d for the host and serves a certificate for 127.0.0.1 and localhost', async () => {
      expect(reg.url).toBe(`https://${reg.host}`);
      expect(readdirSync(path.join(reg.certsDir!, reg.host)).sort()).toEqual(['ca.crt', 'client.cert', 'client.key']);
      expect((await curl('--cacert', reg.caFile!, `${reg.url}/v2/`)).status).toBe(200);
      expect((await curl('--cacert', reg.caFile!, `https://localhost:${reg.host.split(':')[1]}/v2/`)).status).toBe(200);
      expect((await curl(`${reg.url}/v2/`)).code).toBe(60); // the peer's certificate cannot be authenticated
    });

    it('works for skopeo with --cert-dir and fails without the CA', async () => {
      const digest = await pushTestImage(reg, archive, 'test/busybox:1');
      const trusted = await skopeo('inspect', '--cert-dir', path.join(reg.certsDir!, reg.host), `docker://${reg.host}/test/busybox:1`);
      expect(JSON.parse(trusted.stdout).Digest).toBe(digest);
      const untrusted = await skopeo('inspect', `docker://${reg.host}/test/busybox:1`);
      expect(untrusted.ok).toBe(false);
      expect(untrusted.stderr).toMatch(/x509: certificate signed by unknown authority/);
    });

    it('with clientAuth, refuses clients without a certificate of the CA', async () => {
      const creds = ['-u', `${strict.user}:${strict.password}`, '--cacert', strict.caFile!];
      const refused = await curl(...creds, `${strict.url}/v2/`);
      expect([refused.code === 0, refused.status]).toEqual([false, 0]);
      const dir = path.join(strict.certsDir!, strict.host);
      // curl reads --cert as FILE[:PASSWORD]: the colon of the host's directory is escaped
      const cert = path.join(dir, 'client.cert').replaceAll(':', '\\:');
      expect((await curl(...creds, '--cert', cert, '--key', path.join(dir, 'client.key'), `${strict.url}/v2/`)).status).toBe(200);
      const digest = await pushTestImage(strict, archive, 'test/busybox:1');
      const r = await skopeo('inspect', '--cert-dir', dir, '--creds', `${strict.user}:${strict.password}`, `docker://${strict.host}/test/busybox:1`);
      expect(JSON.parse(r.stdout).Digest).toBe(digest);
    });
  });

  describe('token auth', () => {
    let reg: TestRegistry;
    let digest: string;
    let realm: string;
    beforeAll(async () => {
      reg = await registry({ auth: 'token', anonymousPull: true, tokenExpiresIn: 90 });
      digest = await pushTestImage(reg, archive, 'test/busybox:1');
    });
    afterAll(() => reg.stop());

    const token = async (scope: string, ...auth: string[]) => {
      const r = await curl(...auth, `${realm}?service=tsbuild-test-registry&scope=${encodeURIComponent(scope)}`);
      return { status: r.status, ...(r.status === 200 && JSON.parse(r.body.toString())) };
    };
    const login = () => ['-u', `${reg.user}:${reg.password}`];
    const bearer = (t: string) => ['-H', `Authorization: Bearer ${t}`];

    it('challenges with Bearer realm and service', async () => {
      const r = await curl(`${reg.url}/v2/`);
      expect(r.status).toBe(401);
      const challenge = header(r, 'www-authenticate')!;
      expect(challenge).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="tsbuild-test-registry"$/);
      realm = /realm="([^"]+)"/.exec(challenge)![1]!;
    });

    it('issues tokens that open the manifest and the catalog to the account', async () => {
      const pull = await token('repository:test/busybox:pull', ...login());
      expect(pull).toMatchObject({ status: 200, expires_in: 90 });
      expect(pull.access_token).toBe(pull.token);
      const claims = JSON.parse(Buffer.from(pull.token.split('.')[1], 'base64url').toString());
      expect(claims.exp - claims.iat).toBe(90);
      expect(Date.parse(pull.issued_at) / 1000).toBe(claims.iat);
      const manifest = await curl(...bearer(pull.token), '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', `${reg.url}/v2/test/busybox/manifests/1`);
      expect(manifest.status).toBe(200);
      expect(header(manifest, 'docker-content-digest')).toBe(digest);
      expect((await curl(...bearer(pull.token), `${reg.url}/v2/_catalog`)).status).toBe(401);
      const catalog = await curl(...bearer((await token('registry:catalog:*', ...login())).token), `${reg.url}/v2/_catalog`);
      expect(JSON.parse(catalog.body.toString())).toEqual({ repositories: ['test/busybox'] });
    });

    it('grants anonymous requests pull only, and refuses wrong passwords', async () => {
      const anonymous = await token('repository:test/busybox:pull,push');
      expect((await curl(...bearer(anonymous.token), `${reg.url}/v2/test/busybox/tags/list`)).status).toBe(200);
      expect((await curl(...bearer(anonymous.token), '-X', 'POST', `${reg.url}/v2/test/busybox/blobs/uploads/`)).status).toBe(401);
      expect((await token('repository:test/busybox:pull', '-u', `${reg.user}:wrong`)).status).toBe(401);
    });

    it('records every token request with its query and whether it was authorized', async () => {
      const skopeoRequests = reg.tokenRequests!.filter((t) => t.query.account === reg.user);
      expect(skopeoRequests.length).toBeGreaterThan(0);
      expect(skopeoRequests.every((t) => t.authorized && t.method === 'GET' && t.query.service === 'tsbuild-test-registry')).toBe(true);
      expect(skopeoRequests.map((t) => t.query.scope)).toContain('repository:test/busybox:pull,push');
      expect(reg.tokenRequests!.slice(-2).map((t) => [t.query.scope, t.authorized])).toEqual([
        ['repository:test/busybox:pull,push', false],
        ['repository:test/busybox:pull', true],
      ]);
    });

    it('lets skopeo pull with the account', async () => {
      const r = await skopeo('inspect', '--tls-verify=false', '--creds', `${reg.user}:${reg.password}`, `docker://${reg.host}/test/busybox:1`);
      expect(JSON.parse(r.stdout).Digest).toBe(digest);
    });
  });

  describe('the proxy', () => {
    let reg: TestRegistry;
    let layer: { digest: string; size: number };
    const proxies: TestProxy[] = [];
    const proxy = async (...args: Parameters<typeof startProxy>) => {
      const p = await startProxy(...args);
      proxies.push(p);
      return p;
    };
    const blobUrl = (p: TestProxy) => `${p.url}/v2/test/busybox/blobs/${layer.digest}`;
    beforeAll(async () => {
      reg = await registry({ auth: 'basic' });
      await pushTestImage(reg, archive, 'test/busybox:1');
      const manifest = await curl('-u', `${reg.user}:${reg.password}`, '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', `${reg.url}/v2/test/busybox/manifests/1`);
      layer = JSON.parse(manifest.body.toString()).layers[0];
    });
    afterAll(async () => {
      await Promise.all(proxies.map((p) => p.stop()));
      await reg.stop();
    });
    const login = () => ['-u', `${reg.user}:${reg.password}`];

    it('passes a skopeo push and pull through, and records the requests', async () => {
      const p = await proxy(reg.url);
      const digest = await pushTestImage({ ...reg, host: p.host, url: p.url }, archive, 'test/via-proxy:1');
      const r = await skopeo('inspect', '--tls-verify=false', '--creds', `${reg.user}:${reg.password}`, `docker://${p.host}/test/via-proxy:1`);
      expect(JSON.parse(r.stdout).Digest).toBe(digest);
      expect(p.requests.some((q) => q.method === 'PUT' && q.path === '/v2/test/via-proxy/manifests/1')).toBe(true);
      expect(p.requests.every((q) => q.headers.host === p.host)).toBe(true);
    });

    it('cuts the first full GET of a blob after N bytes; a Range request then gets the rest', async () => {
      const p = await proxy(reg.url, { dropBlobAfterBytes: 100_000 });
      const cut = await curl(...login(), blobUrl(p));
      expect(cut.code).toBe(18); // transfer closed with outstanding read data remaining
      expect(cut.body.length).toBe(100_000);
      const rest = await curl(...login(), '-r', '100000-', blobUrl(p));
      expect(rest.status).toBe(206);
      expect(sha256(Buffer.concat([cut.body, rest.body]))).toBe(layer.digest);
      const again = await curl(...login(), blobUrl(p));
      expect([again.code, again.body.length]).toEqual([0, layer.size]);
    });

    it('redirects blob GETs to another host, recording whether Authorization followed', async () => {
      const p = await proxy(reg.url, { redirectBlobsTo: 'self-alt-host' });
      const plain = await curl(...login(), '-L', blobUrl(p));
      expect(header(plain, 'location')).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/v2\/test\/busybox\/blobs\/sha256:[0-9a-f]{64}\?grant=/);
      expect(sha256(plain.body)).toBe(layer.digest);
      const trusted = await curl(...login(), '--location-trusted', blobUrl(p));
      expect(sha256(trusted.body)).toBe(layer.digest);
      const basic = `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}`;
      expect(p.redirected).toEqual([
        { path: `/v2/test/busybox/blobs/${layer.digest}` },
        { path: `/v2/test/busybox/blobs/${layer.digest}`, authorization: basic },
      ]);
    });

    it('tampers with a blob and with manifests, keeping lengths of blobs and the registry digest header', async () => {
      const p = await proxy(reg.url, { tamperBlob: layer.digest, tamperManifest: true });
      const blob = await curl(...login(), blobUrl(p));
      expect(blob.body.length).toBe(layer.size);
      expect(sha256(blob.body)).not.toBe(layer.digest);
      const manifest = await curl(...login(), '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', `${p.url}/v2/test/busybox/manifests/1`);
      expect(JSON.parse(manifest.body.toString()).layers[0].digest).toBe(layer.digest);
      expect(sha256(manifest.body)).not.toBe(header(manifest, 'docker-content-digest'));
    });

    it('answers matching requests with the given codes in turn, then passes them through', async () => {
      const p = await proxy(reg.url, { status: { path: /\/manifests\//, codes: [503, 429] } });
      const get = async () => (await curl(...login(), `${p.url}/v2/test/busybox/manifests/1`)).status;
      expect([await get(), await get(), await get(), (await curl(...login(), `${p.url}/v2/`)).status]).toEqual([503, 429, 200, 200]);
    });
  });

  describe('multi-platform images', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry();
    });
    afterAll(() => reg.stop());

    const inspect = (...args: string[]) => skopeo('inspect', '--tls-verify=false', ...args);
    const amd64AndArm64 = () => ['linux/amd64', 'linux/arm64'].map((platform) => ({ archive, platform }));

    it('makes a Docker manifest list of two platforms from one archive', async () => {
      const digest = await makeMultiPlatformIndex(reg, 'test/multi:1', amd64AndArm64());
      const raw = await inspect('--raw', `docker://${reg.host}/test/multi:1`);
      expect(sha256(Buffer.from(raw.stdout))).toBe(digest);
      const list = JSON.parse(raw.stdout);
      expect(list.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
      expect(list.manifests.map((m: { platform: object }) => m.platform)).toEqual([
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ]);
      const arm = JSON.parse((await inspect('--override-arch', 'arm64', `docker://${reg.host}/test/multi:1`)).stdout);
      expect(arm.Architecture).toBe('arm64');
    });

    it('makes an OCI index with a variant', async () => {
      await makeMultiPlatformIndex(reg, 'test/multi:oci', [...amd64AndArm64(), { archive, platform: 'linux/arm/v7' }], { format: 'oci' });
      const index = JSON.parse((await inspect('--raw', `docker://${reg.host}/test/multi:oci`)).stdout);
      expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(index.manifests.map((m: { platform: { architecture: string; variant?: string } }) => m.platform.variant ?? m.platform.architecture)).toEqual(['amd64', 'arm64', 'v7']);
      const arm = JSON.parse((await inspect('--override-arch', 'arm', '--override-variant', 'v7', `docker://${reg.host}/test/multi:oci`)).stdout);
      expect(arm.Architecture).toBe('arm');
    });
  });

  describe('after the tests', () => {
    it('left no registry running and no registry directory behind', () => {
      const dirs = started.map((r) => path.dirname(r.dataDir));
      const leftover = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
            return dirs.some((d) => cmdline.includes(d));
          } catch {
            return false;
          }
        });
      expect(started.length).toBeGreaterThan(0);
      expect(leftover).toEqual([]);
      expect(dirs.filter((d) => existsSync(d))).toEqual([]);
    });
  });
});

// The registry client itself against real registries: chunked uploads, token refresh, size limits.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryRepository } from '../../src/registry/repository.js';
import type { Digest } from '../../src/util/digest.js';
import { lacks } from '../helpers/env.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe.skipIf(lacks('root'))('the registry client', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token', tokenExpiresIn: 6 });
  });
  afterAll(() => reg?.stop());

  const repo = (path: string) => new RegistryRepository(reg.host, path, { credentials: { username: reg.user!, password: reg.password! } }, 'push');

  it('uploads in chunks (PATCH with Content-Range) and monolithically; both read back whole', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const r = repo('client/chunked');
    await r.upload(digestOf(data), data.length, () => Readable.from([data]), 1024 * 1024);
    expect(await r.hasBlob(digestOf(data))).toBe(true);
    expect((await collect(r.blob(digestOf(data), data.length))).equals(data)).toBe(true);
    const other = randomBytes(100_000);
    await r.upload(digestOf(other), other.length, () => Readable.from([other]));
    expect((await collect(r.blob(digestOf(other), other.length))).equals(other)).toBe(true);
  });

  it('reuses a token while it lives and fetches a new one when it expires', async () => {
    const r = repo('client/tokens');
    await r.hasBlob(digestOf(Buffer.from('x')));
    const before = reg.tokenRequests!.length;
    await r.hasBlob(digestOf(Buffer.from('y')));
    await r.hasBlob(digestOf(Buffer.from('z')));
    expect(reg.tokenRequests!.length).toBe(before);
    await new Promise((res) => setTimeout(res, 1500)); // tokens of 6 s are trusted for 1 s (5 s early)
    await r.hasBlob(digestOf(Buffer.from('x')));
    expect(reg.tokenRequests!.length).toBe(before + 1);
  });

  it('refuses a manifest over 4 MiB without reading it all', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(5 << 20) });
      res.end(Buffer.alloc(5 << 20, 0x20));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = new RegistryRepository(`127.0.0.1:${(server.address() as AddressInfo).port}`, 'big/manifest', {}, 'pull');
      await expect(r.manifest('1')).rejects.toThrow(/manifest .*big\/manifest:1 is 5242880 bytes, over the limit of 4194304/);
    } finally {
      server.close();
    }
  });
});

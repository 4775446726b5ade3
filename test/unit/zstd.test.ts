import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IntegrityError, TsbuildError } from '../../src/errors.js';
import { decompressed } from '../../src/layer/decompress.js';
import { ZSTD_ENCODER, ZstdEncoder } from '../../src/layer/zstd.js';
import { mixedBytes } from '../helpers/fixtures.js';

const MiB = 1 << 20;

async function zstd(input: Buffer, piece = 64 * 1024 + 7, level = 3): Promise<Buffer> {
  const out: Buffer[] = [];
  const enc = new ZstdEncoder({ write: (c) => void out.push(c) }, level);
  for (let off = 0; off < input.length; off += piece) await enc.write(input.subarray(off, off + piece));
  await enc.end();
  return Buffer.concat(out);
}

/** The input handed over in pieces, as a registry's response comes. */
function streamOf(data: Buffer, piece = 16 * 1024 + 3): Readable {
  const pieces: Buffer[] = [];
  for (let off = 0; off < data.length; off += piece) pieces.push(data.subarray(off, off + piece));
  return Readable.from(pieces);
}

async function unzstd(data: Buffer, piece?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of decompressed(streamOf(data, piece))) out.push(c);
  return Buffer.concat(out);
}

async function drain(it: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of it) void _;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}


function cli(args: string[], input: Buffer): Buffer {
  return execFileSync('zstd', args, { input, maxBuffer: 256 * MiB });
}

/** A skippable frame (as zstd:chunked layers carry their metadata in). */
function skippable(content: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a5e, 0);
  head.writeUInt32LE(content.length, 4);
  return Buffer.concat([head, content]);
}

describe('ZstdEncoder and zstd layers', () => {
  const sizes = [0, 1, 511, MiB + 1, 21 * MiB + 12345]; // the last spans several of zstd's 8 MiB jobs
  it.each(sizes)('%i bytes come back whole, random and compressible alike', async (size) => {
    for (const input of [mixedBytes(size), randomBytes(size), Buffer.from('layer tar content '.repeat(size / 18 + 1)).subarray(0, size)]) {
      const z = await zstd(input);
      expect(z.readUInt32LE(0)).toBe(0xfd2fb528);
      expect((await unzstd(z)).equals(input)).toBe(true);
    }
  });

  it('compresses, and gives the same bytes however the input is cut and whatever runs beside it', async () => {
    const input = mixedBytes(10 * MiB + 3);
    const alone = await zstd(input, MiB);
    expect(alone.length).toBeLessThan(input.length * 0.6);
    const together = await Promise.all([zstd(input, 4096), zstd(mixedBytes(9 * MiB), MiB), zstd(input, 333_333)]);
    expect(together[0].equals(alone)).toBe(true);
    expect(together[2].equals(alone)).toBe(true);
    const small = Buffer.from('hello, zstd\n');
    expect((await zstd(small, 1)).equals(await zstd(small))).toBe(true);
  });

  it('names the library it was built with in ZSTD_ENCODER', () => {
    const require = createRequire(import.meta.url);
    const lib = require('zstd-napi/binding.js') as { versionString(): string };
    const pkg = require('zstd-napi/package.json') as { version: string };
    expect(ZSTD_ENCODER.startsWith(`zstd ${lib.versionString()} (zstd-napi ${pkg.version}),`)).toBe(true);
  });

  it('reads frames one after another, skippable frames among them', async () => {
    const a = mixedBytes(3 * MiB);
    const b = Buffer.from('second frame\n'.repeat(1000));
    const c = randomBytes(100_000);
    const frames = Buffer.concat([await zstd(a), skippable(Buffer.from('{"toc":1}')), await zstd(b), cli(['-3', '-c'], c), skippable(Buffer.alloc(0))]);
    expect((await unzstd(frames, 999)).equals(Buffer.concat([a, b, c]))).toBe(true);
    // a stream may start with a skippable frame too
    expect((await unzstd(Buffer.concat([skippable(Buffer.from('x')), await zstd(b)]))).equals(b)).toBe(true);
  });

  it('raises IntegrityError for damaged, truncated or trailing data', async () => {
    const input = mixedBytes(2 * MiB);
    const z = await zstd(input);
    const flipped = Buffer.from(z);
    for (let i = 20; i < flipped.length; i += 997) flipped[i] ^= 0x5a;
    const damaged = await failure(unzstd(flipped));
    expect(damaged).toBeInstanceOf(IntegrityError);
    expect(damaged.message).toMatch(/^corrupt zstd data: /);
    // one byte of incompressible data changed: only the frame's checksum can tell
    const raw = await zstd(randomBytes(300_000));
    raw[raw.length >> 1] ^= 1;
    expect(await failure(unzstd(raw))).toBeInstanceOf(IntegrityError);
    const truncated = await failure(unzstd(z.subarray(0, z.length - 100)));
    expect(truncated).toBeInstanceOf(IntegrityError);
    expect(truncated.message).toMatch(/truncated/);
    expect(await failure(unzstd(z.subarray(0, 5)))).toBeInstanceOf(IntegrityError);
    expect(await failure(unzstd(Buffer.concat([z, Buffer.from('garbage after the frame')])))).toBeInstanceOf(IntegrityError);
  });

  it('passes a failure of the source itself through as it is', async () => {
    const z = await zstd(mixedBytes(MiB));
    const source = Readable.from(
      (async function* () {
        yield z.subarray(0, 1000);
        throw new Error('connection reset');
      })(),
    );
    const err = await failure(drain(decompressed(source)));
    expect(err).not.toBeInstanceOf(TsbuildError);
    expect(err.message).toBe('connection reset');
  });

  it('decompresses as it is asked: a small input that expands enormously is never held whole', async () => {
    const zeros = Buffer.alloc(MiB);
    const out: Buffer[] = [];
    const enc = new ZstdEncoder({ write: (c) => void out.push(c) });
    for (let i = 0; i < 1024; i++) await enc.write(zeros); // 1 GiB
    await enc.end();
    const z = Buffer.concat(out);
    expect(z.length).toBeLessThan(MiB);
    const it = decompressed(Readable.from([z]));
    const first = await it.next();
    expect(first.value!.length).toBeLessThanOrEqual(128 * 1024);
    await it.return(undefined);
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    let total = 0;
    let chunks = 0;
    let peak = 0;
    for await (const c of decompressed(Readable.from([z]))) {
      total += c.length;
      if (++chunks % 256 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers);
    }
    expect(total).toBe(1024 * MiB);
    expect(peak - heapBefore).toBeLessThan(256 * MiB);
  });

  it('interoperates with the zstd command', async () => {
    const input = mixedBytes(6 * MiB + 17);
    expect(cli(['-dc'], await zstd(input)).equals(input)).toBe(true);
    expect((await unzstd(cli(['-3', '-c'], input))).equals(input)).toBe(true);
    expect((await unzstd(cli(['-3', '-T2', '--no-check', '-c'], input))).equals(input)).toBe(true);
    // the strongest levels: bigger windows and other strategies
    const part = input.subarray(0, 2 * MiB);
    expect(cli(['-dc'], await zstd(part, MiB, 19)).equals(part)).toBe(true);
    expect((await unzstd(cli(['-19', '-c'], part))).equals(part)).toBe(true);
    cli(['-tq'], Buffer.concat([await zstd(input), await zstd(Buffer.alloc(0))])); // throws unless the command finds both frames whole
  });
});

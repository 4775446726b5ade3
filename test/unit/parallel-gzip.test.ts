import { execFileSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelGzip } from '../../src/layer/parallel-gzip.js';
import { mixedBytes } from '../helpers/fixtures.js';

const MiB = 1 << 20;

async function pgzip(input: Buffer, level: number, piece: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const gz = new ParallelGzip({ write: (c) => void out.push(Buffer.from(c)) }, level);
  for (let off = 0; off < input.length; off += piece) await gz.write(input.subarray(off, off + piece));
  await gz.end();
  return Buffer.concat(out);
}


describe('ParallelGzip', () => {
  const sizes = [0, 1, 511, MiB - 1, MiB, MiB + 1, 3 * MiB + 12345];
  it.each(sizes)('%i bytes decompress to the input, with gunzip and zlib alike', async (size) => {
    const input = mixedBytes(size);
    const gz = await pgzip(input, 6, 64 * 1024 + 7);
    expect(gunzipSync(gz).equals(input)).toBe(true);
    expect(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * MiB }).equals(input)).toBe(true);
  });

  it('gives the same bytes whatever runs beside it and however the input is cut', async () => {
    const input = mixedBytes(5 * MiB + 3);
    const alone = await pgzip(input, 6, MiB);
    const together = await Promise.all([pgzip(input, 6, 4096), pgzip(mixedBytes(9 * MiB), 1, MiB), pgzip(input, 6, 333_333)]);
    expect(together[0].equals(alone)).toBe(true);
    expect(together[2].equals(alone)).toBe(true);
  });

  it('compresses about as well as plain gzip, at every level', async () => {
    const input = Buffer.from('layer tar content '.repeat(400_000));
    for (const level of [1, 6, 9]) {
      const ours = await pgzip(input, level, MiB);
      expect(gunzipSync(ours).equals(input)).toBe(true);
      expect(ours.length).toBeLessThan(gzipSync(input, { level }).length * 1.05 + 1024);
      expect(ours[8]).toBe(level === 9 ? 2 : level === 1 ? 4 : 0); // XFL, as gzip writes it
    }
    const stored = await pgzip(input, 0, MiB);
    expect(gunzipSync(stored).equals(input)).toBe(true);
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSha256, DigestCounter, randomHex, sha256, sha256Hex } from '../../src/util/digest.js';

const reference = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('sha256 through the addon', () => {
  const inputs: Array<[string, string | Buffer]> = [
    ['empty text', ''],
    ['ascii', 'FROM busybox\nRUN echo hi'],
    ['text beyond ASCII (hashed as UTF-8)', 'h\u00e9llo \u2713 \u{1f600}'],
    ['a lone surrogate (replaced as Node replaces it)', 'a\ud800b'],
    ['bytes with NULs', Buffer.from([0, 1, 2, 255, 0])],
    ['a MiB', Buffer.alloc(1 << 20, 7)],
  ];
  it.each(inputs)('%s: the digest node:crypto gives', (_name, data) => {
    expect(sha256Hex(data)).toBe(reference(data));
    expect(sha256(data)).toBe(`sha256:${reference(data)}`);
  });

  it('streams through createSha256 and DigestCounter alike', () => {
    const counter = new DigestCounter();
    const hash = createSha256();
    for (const part of ['abc', 'def']) {
      counter.update(Buffer.from(part));
      hash.update(part);
    }
    expect(counter.digest()).toBe(`sha256:${reference('abcdef')}`);
    expect(counter.size).toBe(6);
    expect(hash.digest('hex')).toBe(reference('abcdef'));
  });

  it('refuses what is neither text nor bytes', () => {
    expect(() => sha256Hex(42 as unknown as string)).toThrow(/a Buffer or a string/);
  });
});

describe('randomHex', () => {
  it('gives the asked number of bytes, differently each time', () => {
    const seen = new Set(Array.from({ length: 100 }, () => randomHex(8)));
    expect(seen.size).toBe(100);
    for (const h of seen) expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(randomHex(4)).toMatch(/^[0-9a-f]{8}$/);
  });
});

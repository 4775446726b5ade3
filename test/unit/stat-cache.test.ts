import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { StatCache } from '../../src/store/stat-cache.js';
import { context, tempDir } from '../helpers/fixtures.js';

const remembered = (root: string) => {
  const dir = StatCache.dir(root);
  // after its header line, a line per file: its key, then its stat and digest, tab-separated
  return readdirSync(dir).flatMap((f) => readFileSync(path.join(dir, f), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t')[0]));
};

describe('the stat cache', () => {
  it('does not remember a file changed just before it was hashed (racily clean), and does once it is older', async () => {
    const root = tempDir('store-');
    const ctx = context({ 'old.txt': 'old', 'fresh.txt': 'x' });
    await sleep(100);
    writeFileSync(path.join(ctx, 'fresh.txt'), 'fresh');
    const cache = StatCache.forContext(root, ctx);
    const digest = (name: string) => cache.digest(name, lstatSync(path.join(ctx, name)), () => path.join(ctx, name));
    expect(digest('fresh.txt')).toBe(createHash('sha256').update('fresh').digest('hex'));
    digest('old.txt');
    cache.save();
    expect(remembered(root)).toEqual(['old.txt']);
    await sleep(100);
    const later = StatCache.forContext(root, ctx);
    later.digest('fresh.txt', lstatSync(path.join(ctx, 'fresh.txt')), () => path.join(ctx, 'fresh.txt'));
    later.save();
    expect(remembered(root).sort()).toEqual(['fresh.txt', 'old.txt']);
  });

  it('answers a build that asks in the saved order from the file as it reads it, and any other order from all of it', async () => {
    const root = tempDir('store-');
    const names = ['a.txt', 'b.txt', 'c.txt', 'd\ttab.txt'];
    const ctx = context(Object.fromEntries(names.map((n) => [n, `content of ${n}`])));
    await sleep(100); // older than the racily-clean window
    const sha = (n: string) => createHash('sha256').update(readFileSync(path.join(ctx, n))).digest('hex');
    /** A fresh cache (as the next build has), asked for these names; returns the names it had to read. */
    const ask = (order: string[]) => {
      const cache = StatCache.forContext(root, ctx);
      const read: string[] = [];
      for (const n of order) {
        const st = lstatSync(path.join(ctx, n));
        expect(cache.digest(n, st, () => (read.push(n), path.join(ctx, n)))).toBe(sha(n));
      }
      cache.save();
      return read;
    };
    const file = () => path.join(StatCache.dir(root), readdirSync(StatCache.dir(root))[0]!);
    expect(ask(names)).toEqual(names);
    expect(remembered(root)).toEqual(['a.txt', 'b.txt', 'c.txt']); // a key with a tab would break its line
    const saved = readFileSync(file(), 'utf8');
    expect(ask(['a.txt', 'b.txt', 'c.txt'])).toEqual([]);
    expect(readFileSync(file(), 'utf8')).toBe(saved); // nothing to write
    // another order: every answer still from the file, which is saved in the new order
    expect(ask(['c.txt', 'a.txt', 'b.txt'])).toEqual([]);
    expect(remembered(root)).toEqual(['c.txt', 'a.txt', 'b.txt']);
    // a file changed in the middle is read again, in order, and the rest are not
    await sleep(20);
    writeFileSync(path.join(ctx, 'a.txt'), 'changed, and longer');
    await sleep(100);
    expect(ask(['c.txt', 'a.txt', 'b.txt'])).toEqual(['a.txt']);
    expect(ask(['c.txt', 'a.txt', 'b.txt'])).toEqual([]);
    // asked twice in one build (two COPYs of the same files): the second answers come from all of it
    expect(ask(['c.txt', 'a.txt', 'b.txt', 'a.txt', 'c.txt'])).toEqual([]);
    expect(remembered(root)).toEqual(['c.txt', 'a.txt', 'b.txt']);
  });
});

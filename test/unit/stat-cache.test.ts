import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { StatCache } from '../../src/store/stat-cache.js';
import { context, tempDir } from '../helpers/fixtures.js';

const remembered = (root: string) => {
  const dir = StatCache.dir(root);
  return readdirSync(dir).flatMap((f) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { entries: string[][] }).entries.map((e) => e[0]));
};

describe('the stat cache', () => {
  it('does not remember a file changed just before it was hashed (racily clean), and does once it is older', async () => {
    const root = tempDir('store-');
    const ctx = context({ 'old.txt': 'old', 'fresh.txt': 'x' });
    await sleep(100);
    writeFileSync(path.join(ctx, 'fresh.txt'), 'fresh');
    const cache = StatCache.forContext(root, ctx);
    const digest = (name: string) => cache.digest(path.join(ctx, name), lstatSync(path.join(ctx, name)));
    expect(digest('fresh.txt')).toBe(createHash('sha256').update('fresh').digest('hex'));
    digest('old.txt');
    cache.save();
    expect(remembered(root)).toEqual(['old.txt']);
    await sleep(100);
    const later = StatCache.forContext(root, ctx);
    later.digest(path.join(ctx, 'fresh.txt'), lstatSync(path.join(ctx, 'fresh.txt')));
    later.save();
    expect(remembered(root).sort()).toEqual(['fresh.txt', 'old.txt']);
  });
});

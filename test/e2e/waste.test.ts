import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';
import type { WasteReport } from '../../src/store/waste.js';

/**
 * `history --waste` on an image made here, where every figure is known: a 100 KiB file added and
 * deleted, a file overwritten by a bigger one, a directory deleted whole. dive is not packaged for
 * this machine, so its figures are worked out here from its definition (filetree/efficiency.go):
 * a path found in more than one layer wastes every copy of it; the score is the sum of each path's
 * smallest copy over the sum of all copies, where a file's whiteout weighs 0 and a directory's
 * whiteout what the directory held.
 */
describe.skipIf(lacks('root'))('history --waste', () => {
  const root = tempDir('store-');
  let report: WasteReport;
  let contentSizes: number[];

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    const ctx = context({
      'f1000': 'a'.repeat(1000),
      'f2000': 'b'.repeat(2000),
      Dockerfile: [
        'FROM busybox',
        'RUN dd if=/dev/zero of=/big bs=1024 count=100',
        'RUN rm /big',
        'COPY f1000 /data/f',
        'COPY f2000 /data/f',
        'RUN mkdir -p /d/sub && dd if=/dev/zero of=/d/sub/x bs=1000 count=5 && echo hi > /d/y',
        'RUN rm -r /d',
      ].join('\n'),
    });
    await ok(root, ['build', '-q', '-t', 'wasteful', ctx]);
    report = JSON.parse((await ok(root, ['history', '--waste', '--format', 'json', 'wasteful'])).stdout);
    const [image] = JSON.parse((await ok(root, ['inspect', 'wasteful'])).stdout);
    contentSizes = image.Layers.map((l: { ContentSize: number }) => l.ContentSize);
  });

  it('gives each layer its size, what it adds, changes and removes, and what later layers throw away of it', () => {
    expect(report.layers).toHaveLength(7);
    expect(report.layers.map((l) => l.size)).toEqual(contentSizes);
    const [, big, rmBig, copy1, copy2, dir, rmDir] = report.layers;
    expect(big).toMatchObject({ size: 102_400, added: 1, changed: 0, removed: 0, wasted: 102_400 });
    expect(big!.createdBy).toContain('dd if=/dev/zero of=/big');
    expect(rmBig).toMatchObject({ size: 0, added: 0, changed: 0, removed: 1, wasted: 0 });
    expect(copy1).toMatchObject({ size: 1000, added: 1, changed: 0, wasted: 1000 });
    expect(copy2).toMatchObject({ size: 2000, added: 0, changed: 1, wasted: 0 });
    expect(dir).toMatchObject({ size: 5003, added: 2, wasted: 5003 });
    expect(rmDir).toMatchObject({ removed: 1, wasted: 0 });
    expect(report.layers[0]!.wasted).toBe(0);
  });

  it("reports the wasted space and efficiency dive reports", () => {
    const total = contentSizes.reduce((a, b) => a + b, 0);
    expect(report.totalSize).toBe(total);
    // /big: 102,400 then a whiteout of 0; /data/f: 1,000 then 2,000
    expect(report.wastedBytes).toBe(102_400 + 3000);
    expect(report.inefficient).toEqual([
      { path: '/big', count: 2, size: 102_400 },
      { path: '/data/f', count: 2, size: 3000 },
    ]);
    // every copy: the layers' files, and /d's whiteout weighing what /d held
    const discovered = total + 5003;
    expect(report.efficiency).toBeCloseTo((discovered - 102_400 - 2000) / discovered, 12);
    expect(report.userWastedRatio).toBeCloseTo((102_400 + 3000) / (total - contentSizes[0]!), 12);
    expect(report.largest.find((f) => f.path === '/data/f')).toEqual({ path: '/data/f', size: 2000, layer: 4 });
    expect(report.largest.some((f) => f.path === '/big' || f.path.startsWith('/d/'))).toBe(false);
  });

  it('prints the same as a table, and the same figures for the image loaded into another store', async () => {
    const text = (await ok(root, ['history', '--waste', 'wasteful'])).stdout;
    expect(text).toMatch(/^LAYER +SIZE +ADDED +CHANGED +REMOVED +WASTED +CREATED BY$/m);
    expect(text).toMatch(/^1 +102kB +1 +0 +0 +102kB +RUN /m);
    expect(text).toContain('Potential wasted space: 105kB');
    expect(text).toContain(`Image efficiency score: ${(100 * report.efficiency).toFixed(1)} %`);

    const archive = path.join(tempDir('saved-'), 'wasteful.tar');
    await ok(root, ['save', '-o', archive, 'wasteful']);
    const other = tempDir('store-');
    await ok(other, ['load', '-i', archive]);
    const loaded: WasteReport = JSON.parse((await ok(other, ['history', '--waste', '--format', 'json', 'wasteful'])).stdout);
    expect(loaded).toEqual(report);
    expect(readFileSync(archive).length).toBeGreaterThan(0);
  });

  it('refuses a --format it does not have', async () => {
    const r = await tsbuild(root, ['history', '--format', 'table', 'wasteful']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('only --format json with --waste');
  });
});

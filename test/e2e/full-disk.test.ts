// A store whose filesystem fills up: one line saying so, nothing half-written, earlier images and the cache still usable.
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('a full store filesystem', () => {
  const mnt = tempDir('small-fs-');
  const root = path.join(mnt, 'store');
  let before: string;

  beforeAll(async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    before = (await ok(root, ['build', '-q', '-t', 'kept:1', context({ Dockerfile: 'FROM busybox\nRUN echo kept > /kept\n' })])).stdout.trim();
  });
  afterAll(() => execFileSync('umount', [mnt]));

  it('a RUN that fills it, and a COPY that cannot fit, each fail with one line saying so', async () => {
    const run = await tsbuild(root, ['build', '-q', context({ Dockerfile: 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=40\n' })]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(/^tsbuild: .*Dockerfile:2: RUN failed: .*exit code: 1 \(the store's filesystem is full: no space left on .*\/store\)$/);
    const big = context({ Dockerfile: 'FROM busybox\nCOPY big /big\n' });
    writeFileSync(path.join(big, 'big'), Buffer.alloc(40 << 20, 7));
    const copy = await tsbuild(root, ['build', '-q', big]);
    expect(copy.code).toBe(1);
    expect(copy.stderr.trim()).toMatch(/^tsbuild: .*Dockerfile:2: COPY: no space left on the store's filesystem \(.*\/store\): free some \('tsbuild prune'\) or give --root on a bigger one$/);
  });

  it('leaves nothing half-written: fsck is clean, the earlier image and the cache still serve', async () => {
    expect((await ok(root, ['fsck'])).stdout).toContain('is consistent');
    expect(readdirSync(path.join(root, 'tmp')).filter((f) => !f.startsWith('.owner-'))).toEqual([]);
    expect(JSON.parse((await ok(root, ['inspect', 'kept:1'])).stdout)[0].Id).toBe(before);
    const again = await ok(root, ['build', '--progress', 'plain', '-t', 'kept:1', context({ Dockerfile: 'FROM busybox\nRUN echo kept > /kept\n' })]);
    expect(again.stderr).toContain('CACHED');
    await ok(root, ['build', '-q', context({ Dockerfile: 'FROM busybox\nRUN echo fits > /fits\n' })]);
  });
});

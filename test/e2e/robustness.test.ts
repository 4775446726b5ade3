import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok, processesRunning, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('the store under concurrency and kill -9', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('two builds at once on one store both succeed, sharing what they can', async () => {
    const common = 'FROM busybox\nRUN echo shared > /shared\n';
    const a = context({ Dockerfile: `${common}RUN echo a > /a\n` });
    const b = context({ Dockerfile: `${common}RUN echo b > /b\n` });
    // SOURCE_DATE_EPOCH: the shared step makes the same layer in both, whichever second each runs it in
    const epoch = ['--build-arg', 'SOURCE_DATE_EPOCH=1700000000'];
    const [ra, rb] = await Promise.all([tsbuild(root, ['-q', ...epoch, '-t', 'par-a', a]), tsbuild(root, ['-q', ...epoch, '-t', 'par-b', b])]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    const [ia, ib] = JSON.parse((await ok(root, ['inspect', 'par-a', 'par-b'])).stdout);
    expect(ia.Layers[1].DiffID).toBe(ib.Layers[1].DiffID);
    expect((await ok(root, ['fsck'])).stdout).toMatch(/consistent/);
  });

  it('a build killed with SIGKILL at random moments always leaves a store fsck finds consistent', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null\nCOPY data /data\nRUN echo $RANDOM > /r && sleep 0.05\nWORKDIR /w\nRUN cp /big /big2\n',
    });
    writeFileSync(path.join(ctx, 'data'), Buffer.alloc(2 << 20, 7));
    const outDir = tempDir('out-');
    const out = path.join(outDir, 'image.tar');
    for (let i = 0; i < 20; i++) {
      // half of them also export (gzip layers, compressed then; or as docker save writes)
      const output = i % 2 ? ['-o', `type=docker,dest=${out}`] : ['-o', out];
      const child = spawn(process.execPath, [BIN_PATH, '--no-cache', '-q', '-t', 'killed', ...output, ctx], { env: { TSBUILD_ROOT: root }, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.on('exit', resolve)); // it may finish before the kill
      await sleep(Math.floor(Math.random() * 500));
      child.kill('SIGKILL');
      await exited;
      // right after the kill, a listing answers at once (nothing the dead build left is its business)
      const started = Date.now();
      const listed = await tsbuild(root, ['images']);
      expect([listed.code, listed.stderr, listed.stdout.split('\n')[0]]).toEqual([0, '', expect.stringMatching(/^REPOSITORY +TAG +IMAGE ID/)]);
      expect(Date.now() - started).toBeLessThan(5000);
      const check = await tsbuild(root, ['fsck']);
      expect(check.stderr).toBe('');
      expect(check.code).toBe(0);
    }
    for (let i = 0; i < 50 && processesRunning('tsbuild-sandbox').length > 0; i++) await sleep(20);
    expect(processesRunning('tsbuild-sandbox')).toEqual([]);
    const done = await tsbuild(root, ['-q', '-t', 'killed', '-o', `type=docker,dest=${out}`, ctx]);
    expect(done.code).toBe(0);
    expect((await ok(root, ['fsck'])).stdout).toMatch(/consistent/);
    expect(readdirSync(outDir)).toEqual(['image.tar']); // what killed exports left beside it is gone
    const loaded = await ok(tempDir('store-'), ['load', out]);
    expect(loaded.stdout).toContain('Loaded image: killed:latest');
  }, 600_000);
});

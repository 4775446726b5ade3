import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

/** Builds and returns the image ID and which steps ran (their numbers) and which came from the cache. */
async function build(root: string, ctx: string, args: string[] = []) {
  const r = await ok(root, ['-t', 'cached', ...args, ctx]);
  const ran = [...r.stderr.matchAll(/^#(\d+) DONE/gm)].map((m) => Number(m[1])).filter((n) => n !== 1); // #1 is the FROM
  const cached = [...r.stderr.matchAll(/^#(\d+) CACHED/gm)].map((m) => Number(m[1]));
  const id = /writing image (sha256:[0-9a-f]{64})/.exec(r.stderr)![1]!;
  return { id, ran, cached };
}

describe.skipIf(lacks('root'))('the build cache', () => {
  const root = tempDir('store-');
  let baseTar: string;
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    baseTar = path.join(tempDir(), 'base.tar');
    await ok(root, ['save', 'busybox', '-o', baseTar]);
  });

  const dockerfile = [
    'FROM busybox',
    'RUN date +%s%N >> /stamps',
    'COPY first.txt /first',
    'RUN date +%s%N >> /stamps',
    'ARG MODE=a',
    'COPY second.txt /second',
    'RUN echo "$MODE" > /mode && date +%s%N >> /stamps',
    'ENV DONE=yes',
  ].join('\n');

  it('an unchanged rebuild runs nothing and gives the same image', async () => {
    const ctx = context({ Dockerfile: dockerfile, 'first.txt': '1', 'second.txt': '2' });
    const first = await build(root, ctx);
    expect(first.ran).toEqual([2, 3, 4, 5, 6, 7, 8]);
    const second = await build(root, ctx);
    expect(second.ran).toEqual([5, 8]); // ARG and ENV only change the config
    expect(second.cached).toEqual([2, 3, 4, 6, 7]);
    expect(second.id).toBe(first.id);
  });

  it('metadata steps before the first new layer take that layer\'s time (the build\'s), not the base image\'s; a rebuild is the same image', async () => {
    const [base] = JSON.parse((await ok(root, ['inspect', 'busybox'])).stdout);
    await new Promise((r) => setTimeout(r, 1100)); // the build's time is later than the base's
    const ctx = context({ Dockerfile: 'FROM busybox\nENV A=1\nLABEL l=1\nRUN echo x > /x\nENV B=2\n' });
    const first = await build(root, ctx);
    const [img] = JSON.parse((await ok(root, ['inspect', first.id])).stdout);
    const times = img.History.map((h: { created: string }) => h.created);
    const built = times.at(-2); // the RUN's
    expect(Date.parse(built)).toBeGreaterThan(Date.parse(base.Created));
    expect(times.slice(base.History.length)).toEqual([built, built, built, built]);
    expect(img.Created).toBe(built);
    expect((await build(root, ctx)).id).toBe(first.id);
  });

  it('changing one copied file re-runs exactly the steps from its COPY on', async () => {
    const ctx = context({ Dockerfile: dockerfile, 'first.txt': '1', 'second.txt': '2' });
    await build(root, ctx);
    writeFileSync(path.join(ctx, 'second.txt'), 'changed');
    const r = await build(root, ctx);
    expect(r.cached).toEqual([2, 3, 4]);
    expect(r.ran.filter((n) => [6, 7].includes(n))).toEqual([6, 7]);
  });

  it('changing a build arg re-runs the RUN steps that see it, not the COPY before them', async () => {
    const ctx = context({ Dockerfile: dockerfile, 'first.txt': '1', 'second.txt': '2' });
    await build(root, ctx);
    const r = await build(root, ctx, ['--build-arg', 'MODE=b']);
    expect(r.cached).toEqual([2, 3, 4, 6]);
    expect(r.ran).toContain(7);
  });

  it('--no-cache-filter runs every step of the named stage only', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN echo b > /b\nCOPY --from=a /a /a\n' });
    await build(root, ctx);
    const r = await build(root, ctx, ['--no-cache-filter', 'a', '--jobs', '1']);
    expect(r.ran).toContain(2); // stage a's RUN
    expect(r.cached).toContain(4); // stage b's RUN
  });

  it('a hit never borrows another step\'s history: ARG FOO then RUN is not plain RUN', async () => {
    const plain = await build(root, context({ Dockerfile: 'FROM busybox\nRUN echo same > /x\n' }));
    const withArg = await build(root, context({ Dockerfile: 'FROM busybox\nARG FOO\nRUN echo same > /x\n' }));
    const [a, b] = JSON.parse((await ok(root, ['inspect', plain.id, withArg.id])).stdout);
    expect(a.History.at(-1).created_by).toBe('RUN /bin/sh -c echo same > /x # buildkit');
    expect(b.History.at(-1).created_by).toBe('RUN |1 FOO= /bin/sh -c echo same > /x # buildkit');
  });

  it('--no-cache runs every step', async () => {
    const ctx = context({ Dockerfile: dockerfile, 'first.txt': '1', 'second.txt': '2' });
    await build(root, ctx);
    const r = await build(root, ctx, ['--no-cache']);
    expect(r.cached).toEqual([]);
  });

  it('SOURCE_DATE_EPOCH makes two cold builds in two stores byte-identical', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN mkdir /out && echo hi > /out/f\nCOPY first.txt /first\nWORKDIR /w\n', 'first.txt': '1' });
    const outputs: Buffer[] = [];
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const store = tempDir(`repro-${n}-`);
      await ok(store, ['load', baseTar]);
      const out = path.join(tempDir(), 'image.tar');
      const r = await ok(store, ['-q', '-t', 'repro', '-o', out, ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
      ids.push(r.stdout.trim());
      outputs.push(readFileSync(out));
      await new Promise((resolve) => setTimeout(resolve, 1100)); // a second apart: wall clocks must not leak in
    }
    expect(ids[1]).toBe(ids[0]);
    expect(outputs[1]!.equals(outputs[0]!)).toBe(true);
    const listing = execFileSync('tar', ['-tvf', '-'], { input: outputs[0], encoding: 'utf8' });
    expect(listing).toContain('manifest.json');
    const config = JSON.parse(execFileSync('sh', ['-c', 'tar -xOf - manifest.json'], { input: outputs[0], encoding: 'utf8' }))[0].Config;
    const cfg = JSON.parse(execFileSync('tar', ['-xOf', '-', config], { input: outputs[0], encoding: 'utf8' }));
    expect(cfg.created).toBe('2023-11-14T22:13:20.000Z');
  });
});

describe.skipIf(lacks('root'))('an unchanged -o output', () => {
  it('is not written again, and is written when the file changed', async () => {
    const root = tempDir('store-');
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo x > /x\n' });
    const out = path.join(tempDir(), 'image.tar');
    await ok(root, ['-t', 'o', '-o', out, ctx]);
    const again = await ok(root, ['-t', 'o', '-o', out, ctx]);
    expect(again.stderr).toContain('already holds this image: unchanged');
    writeFileSync(out, 'clobbered');
    const third = await ok(root, ['-t', 'o', '-o', out, ctx]);
    expect(third.stderr).toContain(`exported to ${out}`);
    expect(readFileSync(out).length).toBeGreaterThan(10_000);
  });
});

describe.skipIf(lacks('root', 'strace'))('the stat cache', () => {
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nCOPY data /data\n' };
  for (let i = 0; i < 50; i++) files[`data/f${i}.txt`] = `file ${i}\n`;

  /** Builds under strace: the context files under data/ whose content the build opened, and its log. */
  async function tracedBuild(root: string, ctx: string): Promise<{ opened: string[]; stderr: string }> {
    const log = path.join(tempDir(), 'strace.log');
    // context files are opened by path, or beneath the context's descriptor (openat2, relative)
    const r = await execa('strace', ['-f', '-qq', '-e', 'trace=openat,openat2', '-o', log, process.execPath, BIN_PATH, '-t', 'stat', ctx], { env: { TSBUILD_ROOT: root } });
    const opened = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => /openat2?\(/.test(l) && !l.includes('O_DIRECTORY') && !/= -1/.test(l))
      .map((l) => /"([^"]+)"/.exec(l)![1]!)
      .map((p) => (p.startsWith('data/') ? path.join(ctx, p) : p))
      .filter((p) => p.startsWith(`${ctx}/data/`));
    return { opened, stderr: r.stderr };
  }

  it('an unchanged rebuild reads no file content; a changed file is read again even with its old size and mtime', async () => {
    const root = tempDir('store-');
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    const ctx = context(files);
    expect((await tracedBuild(root, ctx)).opened.length).toBeGreaterThanOrEqual(50); // hashed, then copied
    const unchanged = await tracedBuild(root, ctx);
    expect(unchanged.stderr).toMatch(/^#2 CACHED/m);
    expect(unchanged.opened).toEqual([]);

    const file = path.join(ctx, 'data/f7.txt');
    const before = statSync(file);
    writeFileSync(file, 'FILE 7\n'); // same size
    utimesSync(file, before.atime, before.mtime); // same mtime: only ctime tells
    const changed = await tracedBuild(root, ctx);
    expect(changed.opened).toContain(file);
    expect(changed.stderr).not.toMatch(/^#2 CACHED/m);
  });
});

// Runs only bench/scale.ts (for trying it): BENCH_RUNS and BENCH_BIG_GIB as for npm run bench.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfsTar } from '../test/helpers/fixtures.js';
import { bigLayersBench, bigStoreBench, manyFilesBench } from './scale.js';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tsbuild.cjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-scale-'));
process.env.TSBUILD_TEST_TMP = work;
const sh = (cmd: string) => {
  const t = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString().slice(-2000)}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const context = (name: string, dockerfile: string) => {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
};
const root = path.join(work, 'store');
const rootfs = busyboxRootfsTar(work, {});
const tsb = (r: string, args: string) => `node ${BIN} --root ${r} ${args}`;
sh(tsb(root, `import ${rootfs} bench-busybox`));
sh(`/usr/bin/docker import ${rootfs} bench-busybox >/dev/null`);
const t = { work, runs: Number(process.env.BENCH_RUNS ?? 3), docker: '/usr/bin/docker', root, rootfs, sh, context, tsb };
const seed = context('seed', 'FROM bench-busybox\nRUN echo "Hello world" > /tmp/newfile\n');
const which = process.argv.slice(2);
if (which.length === 0 || which.includes('many')) console.log(manyFilesBench(t).join('\n'));
if (which.length === 0 || which.includes('store')) console.log(bigStoreBench(t, seed).join('\n'));
if (which.length === 0 || which.includes('layers')) console.log(bigLayersBench(t).join('\n'));
rmSync(work, { recursive: true, force: true });

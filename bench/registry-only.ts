// Runs only bench/registry.ts (for trying it, or after a full bench stopped before it): BENCH_RUNS as for npm run bench.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfsTar } from '../test/helpers/fixtures.js';
import { registryBench } from './registry.js';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tsbuild.cjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-registry-'));
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
const runs = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const lines = await registryBench({
    work,
    runs,
    docker: '/usr/bin/docker',
    rootfs: busyboxRootfsTar(work, {}),
    sh,
    tsb: (root, args) => `node ${BIN} --root ${root} ${args}`,
    context,
    time: (cmd, before, n = runs) => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        if (before) sh(before);
        times.push(sh(cmd));
      }
      return median(times);
    },
  });
  console.log(lines.join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}

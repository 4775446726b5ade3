// What a part of the bench run alone needs (bench/scale-only.ts, bench/registry-only.ts): a work
// directory, timed shell commands, contexts, the CLI's command line. BENCH_RUNS as for npm run bench.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tsbuild.cjs');

export function benchAlone(name: string) {
  const work = mkdtempSync(path.join(os.tmpdir(), `tsbuild-${name}-`));
  process.env.TSBUILD_TEST_TMP = work;
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  /** Runs a shell command; its seconds. */
  const sh = (cmd: string) => {
    const t = process.hrtime.bigint();
    const r = spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString().slice(-2000)}`);
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  const context = (dir: string, dockerfile: string) => {
    const at = path.join(work, dir);
    mkdirSync(at, { recursive: true });
    writeFileSync(path.join(at, 'Dockerfile'), dockerfile);
    return at;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  /** The median seconds of `n` runs of cmd, each after `before` (untimed). */
  const time = (cmd: string, before?: string, n = runs) => median(Array.from({ length: n }, () => (before && sh(before), sh(cmd))));
  const tsb = (root: string, args: string) => `node ${BIN} --root ${root} ${args}`;
  return { work, runs, sh, context, time, tsb };
}

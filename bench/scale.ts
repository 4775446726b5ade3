/**
 * The scale part of `npm run bench` (issue 14): cost that grows with the work, each against its
 * physical floor measured in the same run.
 * - Many small files: 100 dirs x 1,000 files of ~200 bytes, `COPY src /src` then `RUN ls /src | wc -l`:
 *   the COPY step against `tar -c | sha256sum`, the RUN step (the COPY layer's EROFS image written,
 *   or its one extraction when it cannot be mounted) against `tar -c | tar -x`, paired run by run;
 *   the whole cold build against BuildKit; the warm
 *   no-op rebuild against `find -printf '%s %T@'` plus `node -e 0`.
 * - Big stores: 1,000 images and 20,000 cache entries: `images`, a cached build and `prune` against
 *   the same on a store with just the base image.
 * - Big layers (BENCH_BIG_GIB, default 10; 0 skips): a RUN writing that much and a COPY of a file
 *   that big, with -o, against `tar -c | sha256sum` of the same data, with tsbuild's peak RSS.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fillStore } from './big-store.js';

export interface ScaleTools {
  work: string;
  runs: number;
  docker: string;
  /** tsbuild on a store: the command line for these arguments. */
  tsb(root: string, args: string): string;
  /** The store the other cases use, with bench-busybox in it. */
  root: string;
  rootfs: string;
  sh(cmd: string): number;
  context(name: string, dockerfile: string): string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (s: number) => `${s.toFixed(3)}s`;

/** Runs a build (progress on stderr) and returns each step's DONE time, in seconds, by step number. */
function stepTimes(cmd: string): Map<number, number> {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.slice(-2000)}`);
  const out = new Map<number, number>();
  for (const m of r.stderr.matchAll(/^#(\d+) DONE (\d+\.\d+)s$/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

/** Peak RSS of a command in MB, and its time. */
function timedRss(t: ScaleTools, cmd: string): { rss: number; time: number } {
  const file = path.join(t.work, 'time.out');
  const time = t.sh(`/usr/bin/time -f %M -o ${file} ${cmd}`);
  return { rss: Number(execFileSync('tail', ['-1', file], { encoding: 'utf8' }).trim()) / 1024, time };
}

export function manyFilesBench(t: ScaleTools): string[] {
  const dir = t.context('many', 'FROM bench-busybox\nCOPY src /src\nRUN ls /src | wc -l\n');
  for (let d = 0; d < 100; d++) {
    mkdirSync(path.join(dir, 'src', `d${d}`), { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(dir, 'src', `d${d}`, `f${i}.js`), `// ${d}/${i}\n${'x'.repeat(190)}\n`);
  }
  const x = path.join(t.work, 'many-x');
  const floorCopy = `tar -C ${dir} -cf - src | sha256sum >/dev/null`;
  const build = `sync && ${t.tsb(t.root, `--no-cache -t bench-many ${dir}`)}`;
  const copyRatios: number[] = [];
  const extractRatios: number[] = [];
  const steps: Array<Map<number, number>> = [];
  const floors = { copy: [] as number[], extract: [] as number[] };
  for (let i = 0; i < t.runs; i++) {
    const s = stepTimes(build);
    steps.push(s);
    const copy = t.sh(floorCopy);
    // the floor's own rm and sync are not part of it: time tar alone
    t.sh(`rm -rf ${x} && mkdir ${x} && sync`);
    const extract = t.sh(`tar -C ${dir} -cf - src | tar -C ${x} -xf -`);
    floors.copy.push(copy);
    floors.extract.push(extract);
    copyRatios.push(s.get(2)! / copy);
    extractRatios.push(s.get(3)! / extract);
  }
  rmSync(x, { recursive: true, force: true });
  const out = path.join(t.work, 'many.tar');
  const coldTs = median(Array.from({ length: t.runs }, () => t.sh(`rm -f ${out} && ${t.tsb(t.root, `-q --no-cache -t bench-many -o ${out} ${dir}`)}`)));
  const coldBk = median(Array.from({ length: t.runs }, () => t.sh(`DOCKER_BUILDKIT=1 ${t.docker} build -q --no-cache -t bench-many ${dir} >/dev/null && ${t.docker} save bench-many -o ${out}`)));
  rmSync(out, { force: true });
  t.sh(t.tsb(t.root, `-q -t bench-many ${dir}`)); // the stat cache and the build cache, warm
  const warm: number[] = [];
  const walk: number[] = [];
  for (let i = 0; i < Math.max(t.runs, 5); i++) {
    warm.push(t.sh(t.tsb(t.root, `-q -t bench-many ${dir}`)));
    walk.push(t.sh(`find ${dir}/src -printf '%s %T@\\n' >/dev/null && node -e 0`));
  }
  const step = (n: number) => median(steps.map((s) => s.get(n)!));
  return [
    `many small files (100 x 1,000 files of ~200 bytes: COPY src /src, RUN ls /src | wc -l), median of ${t.runs}, paired:`,
    `  COPY step ${f(step(2))} vs tar -c | sha256sum ${f(median(floors.copy))}: ${median(copyRatios).toFixed(2)}x (target <= 2x)`,
    `  RUN step (mounts the COPY layer: its EROFS image written once, or extracted where it cannot be mounted) ${f(step(3))} vs tar -c | tar -x ${f(median(floors.extract))}: ${median(extractRatios).toFixed(2)}x (target <= 2x)`,
    `  cold build with -o: tsbuild ${f(coldTs)}, BuildKit + docker save ${f(coldBk)}: BuildKit / tsbuild ${(coldBk / coldTs).toFixed(2)}x (target >= 4x)`,
    `  warm no-op rebuild ${f(median(warm))} vs find -printf + node -e 0 ${f(median(walk))}: ${(median(warm) / median(walk)).toFixed(2)}x (target <= 2x)`,
  ];
}

export function bigStoreBench(t: ScaleTools, seedDir: string): string[] {
  const small = path.join(t.work, 'store-small');
  const big = path.join(t.work, 'store-big');
  for (const root of [small, big]) t.sh(t.tsb(root, `import ${t.rootfs} bench-busybox`));
  fillStore(big, 'bench-busybox', 1000, 20000);
  for (const root of [small, big]) t.sh(t.tsb(root, `-q -t bench-seed ${seedDir}`)); // cached from now on
  const commands: Array<[string, string]> = [
    ['images', 'images'],
    ['fully cached build (seed)', `-q -t bench-seed ${seedDir}`],
    ['prune (nothing to remove)', 'prune'],
  ];
  const runs = Math.max(t.runs, 9);
  const lines = [`big store (1,000 images, 20,000 cache entries) against a store with one image, median of ${runs}, run alternately:`];
  for (const [name, args] of commands) {
    const times = { small: [] as number[], big: [] as number[] };
    for (let i = 0; i < runs; i++) {
      times.small.push(t.sh(`${t.tsb(small, args)} >/dev/null`));
      times.big.push(t.sh(`${t.tsb(big, args)} >/dev/null`));
    }
    const s = median(times.small);
    const b = median(times.big);
    lines.push(`  ${name.padEnd(28)} ${f(b)} vs ${f(s)}: ${(b / s).toFixed(2)}x (target <= 2x)`);
  }
  rmSync(big, { recursive: true, force: true });
  rmSync(small, { recursive: true, force: true });
  return lines;
}

export function bigLayersBench(t: ScaleTools): string[] {
  const gib = Number(process.env.BENCH_BIG_GIB ?? 10);
  if (!(gib > 0)) return ['big layers: skipped (BENCH_BIG_GIB=0)'];
  const root = path.join(t.work, 'store-bigl');
  t.sh(t.tsb(root, `import ${t.rootfs} bench-busybox`));
  const out = path.join(t.work, 'bigl.tar');
  const runDir = t.context('bigl-run', `FROM bench-busybox\nRUN dd if=/dev/zero of=/big bs=1M count=${gib * 1024} 2>/dev/null\n`);
  const copyDir = t.context('bigl-copy', 'FROM bench-busybox\nCOPY big /big\n');
  // a file of distinct blocks (not all zeros), written once
  const fd = openSync(path.join(copyDir, 'big'), 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < gib * 1024; i++) {
    chunk.writeUInt32LE(i, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const run = timedRss(t, t.tsb(root, `-q --no-cache -t bench-bigl -o ${out} ${runDir}`));
  rmSync(out, { force: true });
  const copy = timedRss(t, t.tsb(root, `-q --no-cache -t bench-bigl ${copyDir}`));
  const floor = t.sh(`tar -C ${copyDir} -cf - big | sha256sum >/dev/null`);
  rmSync(root, { recursive: true, force: true });
  rmSync(path.join(copyDir, 'big'), { force: true });
  return [
    `big layers (${gib} GiB), against tar -c | sha256sum of a ${gib} GiB file (${f(floor)}):`,
    `  RUN writing ${gib} GiB, with -o docker-archive: ${f(run.time)} (${(run.time / floor).toFixed(2)}x; the step writes the data, the layer and the tarball), peak RSS ${run.rss.toFixed(0)} MB (target < 300 MB)`,
    `  COPY of a ${gib} GiB file: ${f(copy.time)} (${(copy.time / floor).toFixed(2)}x, target <= 1.5x), peak RSS ${copy.rss.toFixed(0)} MB (target < 300 MB)`,
  ];
}

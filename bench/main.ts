/**
 * npm run bench: tsbuild against `docker build` (BuildKit, then `docker save`) and `buildah bud`
 * (then `buildah push docker-archive:`), all ending in a tarball, measured in the same run on this
 * machine, cold (no cache) and warm (an unchanged rebuild), reported as ratios to BuildKit.
 *
 * Cases: the seed; 20 trivial RUN steps; COPY of 10,000 small files plus a 256 MiB file; a RUN that
 * writes 256 MiB and deletes a base directory; a three-stage build. Also: per-RUN-step overhead, the
 * big COPY against `tar -c | sha256sum`, gzip export against `gzip -6`, and tsbuild's peak RSS on
 * a 2 GiB layer. Rootless (an ordinary user, tsbuild in a user namespace) beside root on every case,
 * when the machine has newuidmap. And start-up: `images`, `inspect`, `history` and a fully cached build against
 * `node -e 0` (Node's own start) in the same run. Then scale (bench/scale.ts: 100,000 small files,
 * a big store, 10 GiB layers) and registries (bench/registry.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfsTar } from '../test/helpers/fixtures.js';
import { installedForUsers, shareReadOnly, testUser, userDir } from '../test/helpers/rootless.js';
import { registryBench } from './registry.js';
import { bigLayersBench, bigStoreBench, manyFilesBench } from './scale.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'tsbuild.cjs');
const DOCKER = '/usr/bin/docker';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-bench-'));
process.env.TSBUILD_TEST_TMP = work; // the test helpers' temp dirs go with it (removed at the end)
const root = path.join(work, 'store');
const out = path.join(work, 'out.tar');

function sh(cmd: string, env: Record<string, string> = {}): number {
  const started = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString().slice(-2000)}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Every tarball a builder writes: removed before each timed run, so that none finds its output already there. */
const outputs = [out];

function timeIt(cmd: string, env: Record<string, string> = {}, runs = RUNS): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const o of outputs) rmSync(o, { force: true });
    times.push(sh(cmd, env));
  }
  return median(times);
}

/** The median of a/b over runs that alternate a and b: a ratio that the machine's drift does not move. */
function pairedRatio(a: string, b: string, runs = RUNS): number {
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const o of outputs) rmSync(o, { force: true });
    const ta = sh(a);
    for (const o of outputs) rmSync(o, { force: true });
    ratios.push(ta / sh(b));
  }
  return median(ratios);
}

/** Peak RSS of a command, in MB, from GNU time. */
function peakRss(cmd: string): number {
  const file = path.join(work, 'time.out');
  sh(`/usr/bin/time -f %M -o ${file} ${cmd}`);
  return Number(execFileSync('tail', ['-1', file], { encoding: 'utf8' }).trim()) / 1024;
}

function context(name: string, dockerfile: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

function bigCopyContext(): string {
  const dir = context('copy', 'FROM bench-busybox\nCOPY . /data\n');
  for (let d = 0; d < 100; d++) {
    mkdirSync(path.join(dir, 'small', String(d)), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(path.join(dir, 'small', String(d), `f${f}.txt`), `file ${d}/${f}\n`.repeat(20));
  }
  const fd = openSync(path.join(dir, 'big.bin'), 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < 256; i++) {
    chunk.fill(i);
    chunk.writeUInt32LE(i * 7919, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  return dir;
}

interface Builder {
  name: string;
  cold(dir: string): string;
  warm(dir: string): string;
}

/**
 * tsbuild as an ordinary user (rootless: a user namespace of its own), when this machine can make
 * one: a user the tests also use, with subordinate ids, its own store, and the base image loaded.
 */
function rootlessBuilder(): Builder[] {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/newuidmap')) return [];
  const user = testUser();
  const home = userDir(user, 'bench-home-');
  const rlOut = path.join(home, 'out.tar');
  outputs.push(rlOut);
  const as = (args: string) =>
    `setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups env -i HOME=${home} PATH=/usr/sbin:/usr/bin:/sbin:/bin node ${installedForUsers()} ${args}`;
  const base = path.join(userDir(user, 'bench-base-'), 'base.tar');
  sh(`node ${BIN} --root ${root} save bench-busybox -o ${base} && chmod 644 ${base}`);
  sh(as(`load -q -i ${base}`));
  return [{ name: 'rootless', cold: (dir) => as(`-q --no-cache -t bench-out -o ${rlOut} ${dir}`), warm: (dir) => as(`-q -t bench-out -o ${rlOut} ${dir}`) }];
}

async function main(): Promise<void> {
  if (spawnSync(DOCKER, ['info'], { stdio: 'ignore' }).status !== 0) throw new Error('npm run bench needs dockerd running (bash scripts/install-deps.sh starts it)');
  const tsb = (args: string) => `node ${BIN} --root ${root} ${args}`;
  // busybox with a directory for the RUN case to delete
  const rootfs = busyboxRootfsTar(work, Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`usr/share/doc/f${i}`, 'doc\n'])));
  sh(tsb(`import ${rootfs} bench-busybox`));
  sh(`${DOCKER} import ${rootfs} bench-busybox >/dev/null`);
  const haveBuildah = spawnSync('buildah', ['--version'], { stdio: 'ignore' }).status === 0;
  if (haveBuildah) {
    sh(`${DOCKER} save bench-busybox -o ${work}/base.tar`);
    const id = execFileSync('bash', ['-c', `buildah pull -q docker-archive:${work}/base.tar | tail -1`], { encoding: 'utf8' }).trim();
    sh(`buildah tag ${id} bench-busybox`);
  }
  const buildah = (extra: string) => (dir: string) => `buildah bud --runtime /usr/sbin/runc -q --layers ${extra} -t bench-out ${dir} >/dev/null && buildah push -q bench-out docker-archive:${out}:bench-out >/dev/null`;
  const builders: Builder[] = [
    { name: 'tsbuild', cold: (dir) => tsb(`-q --no-cache -t bench-out -o ${out} ${dir}`), warm: (dir) => tsb(`-q -t bench-out -o ${out} ${dir}`) },
    {
      name: 'buildkit',
      cold: (dir) => `DOCKER_BUILDKIT=1 ${DOCKER} build -q --no-cache -t bench-out ${dir} >/dev/null && ${DOCKER} save bench-out -o ${out}`,
      warm: (dir) => `DOCKER_BUILDKIT=1 ${DOCKER} build -q -t bench-out ${dir} >/dev/null && ${DOCKER} save bench-out -o ${out}`,
    },
    ...(haveBuildah ? [{ name: 'buildah', cold: buildah('--no-cache'), warm: buildah('') }] : []),
    ...rootlessBuilder(),
  ];

  const cases: Array<[string, string]> = [
    ['seed', context('seed', 'FROM bench-busybox\nRUN echo "Hello world" > /tmp/newfile\n')],
    ['20 RUN steps', context('runs20', `FROM bench-busybox\n${Array.from({ length: 20 }, (_, i) => `RUN echo ${i} > /f${i}`).join('\n')}\n`)],
    ['COPY 10k files + 256 MiB', bigCopyContext()],
    ['RUN writes 256 MiB, deletes a dir', context('bigrun', 'FROM bench-busybox\nRUN dd if=/dev/zero of=/big bs=1M count=256 2>/dev/null && rm -rf /usr/share/doc\n')],
    ['three-stage build', context('stages', 'FROM bench-busybox AS a\nRUN echo a > /a\nFROM bench-busybox AS b\nRUN echo b > /b\nFROM bench-busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n')],
  ];

  for (const [, dir] of cases) shareReadOnly(dir); // for the rootless user: the contexts only, never the store
  const results = new Map<string, Map<string, { cold: number; warm: number }>>();
  for (const [name, dir] of cases) {
    const row = new Map<string, { cold: number; warm: number }>();
    for (const b of builders) {
      const cold = timeIt(b.cold(dir));
      const warm = timeIt(b.warm(dir)); // after a cold build of the same context
      row.set(b.name, { cold, warm });
    }
    results.set(name, row);
  }

  // rootless against root, case by case, cold and warm, paired: the same work, so the ratio is the cost of the user namespace
  const rootless = builders.find((b) => b.name === 'rootless');
  const rootlessRatios = new Map<string, { cold: number; warm: number }>();
  if (rootless) {
    const asRoot = builders.find((b) => b.name === 'tsbuild')!;
    for (const [name, dir] of cases) rootlessRatios.set(name, { cold: pairedRatio(rootless.cold(dir), asRoot.cold(dir), Math.max(RUNS, 5)), warm: pairedRatio(rootless.warm(dir), asRoot.warm(dir), Math.max(RUNS, 5)) });
  }

  // gzip for -o type=docker: the COPY case's layers compressed afresh each time (the store keeps
  // compressed layers, so they are removed first), against single-threaded gzip over the same files
  const gzipOut = timeIt(`rm -rf ${root}/compressed && ${tsb(`-q -t bench-out -o type=docker,dest=${out} ${cases[2]![1]}`)}`);
  const gzipRef = timeIt(`tar -C ${cases[2]![1]} -cf - . | gzip -6 >/dev/null`);
  const tarSha = timeIt(`tar -C ${cases[2]![1]} -cf - . | sha256sum >/dev/null`);
  const copyOnly = timeIt(tsb(`-q --no-cache -t bench-copy ${cases[2]![1]}`));
  // the same RUN steps through runc (--runtime): what the built-in sandbox saves per step
  const haveRunc = spawnSync('/usr/sbin/runc', ['--version'], { stdio: 'ignore' }).status === 0;
  const runcSeed = haveRunc ? timeIt(tsb(`-q --no-cache --runtime runc -t bench-out ${cases[0]![1]}`)) : NaN;
  const runcRuns = haveRunc ? timeIt(tsb(`-q --no-cache --runtime runc -t bench-out ${cases[1]![1]}`)) : NaN;
  // per RUN step, with and without the default network, and the floor: the same steps done with
  // shell tools (namespaces, an overlay mount, sh -c, then tar | sha256sum of the upper dir);
  // interleaved, so that the machine's drift moves all alike
  const floorLower = path.join(work, 'floor-lower');
  mkdirSync(floorLower, { recursive: true });
  sh(`tar -xf ${rootfs} -C ${floorLower}`);
  const floorSteps = (n: number) =>
    `for i in $(seq ${n}); do d=$(mktemp -d -p ${work}); mkdir $d/upper $d/work $d/merged; ` +
    `unshare --mount --pid --uts --ipc --net --fork sh -c "mount -t overlay overlay -o lowerdir=${floorLower},upperdir=$d/upper,workdir=$d/work $d/merged && chroot $d/merged /bin/sh -c 'echo $i > /f$i'"; ` +
    'tar -C $d/upper -cf - . | sha256sum >/dev/null; rm -rf $d; done';
  const stepRuns = Math.max(RUNS, 7);
  const stepCmds = {
    seed: tsb(`-q --no-cache -t bench-out ${cases[0]![1]}`),
    default: tsb(`-q --no-cache -t bench-out ${cases[1]![1]}`),
    none: tsb(`-q --no-cache --network=none -t bench-out ${cases[1]![1]}`),
    floor1: floorSteps(1),
    floor20: floorSteps(20),
  };
  const stepTimes = new Map(Object.keys(stepCmds).map((k) => [k, [] as number[]]));
  for (let i = 0; i < stepRuns; i++) for (const [k, cmd] of Object.entries(stepCmds)) stepTimes.get(k)!.push(sh(cmd));
  const stepMedian = (k: string) => median(stepTimes.get(k)!);
  const networkPerStep = median(stepTimes.get('default')!.map((t, i) => (t - stepTimes.get('none')![i]!) / 20));
  const runDefault = (stepMedian('default') - stepMedian('seed')) / 19;
  const runNone = (stepMedian('none') - stepMedian('seed')) / 19;
  const floorStep = (stepMedian('floor20') - stepMedian('floor1')) / 19;
  // start-up: commands that do little, against Node starting and exiting; pairs run alternately
  const startupRuns = Math.max(RUNS, 25);
  const startup: Array<[string, string]> = [
    ['node -e 0', 'node -e 0'],
    ['tsbuild --version', tsb('--version')],
    ['tsbuild images', tsb('images')],
    ['tsbuild inspect', tsb('inspect bench-busybox')],
    ['tsbuild history', tsb('history bench-busybox')],
    ['fully cached build (seed)', tsb(`-q -t bench-out ${cases[0]![1]}`)],
  ];
  sh(startup.map(([, c]) => `${c} >/dev/null`).join(' && ')); // warm the page cache
  const startupTimes = new Map(startup.map(([name]) => [name, [] as number[]]));
  for (let i = 0; i < startupRuns; i++) for (const [name, cmd] of startup) startupTimes.get(name)!.push(sh(`${cmd} >/dev/null`));
  const bigLayer = context('big2g', 'FROM bench-busybox\nRUN dd if=/dev/zero of=/big bs=1M count=2048 2>/dev/null\n');
  const rss = peakRss(tsb(`-q --no-cache -t bench-big -o ${out} ${bigLayer}`));
  rmSync(out, { force: true });

  const f = (s: number) => `${s.toFixed(3)}s`;
  const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
  const r = (a: number, b: number) => (a / b).toFixed(3);
  console.log(`\ntsbuild, docker build (BuildKit) + docker save${haveBuildah ? ', buildah bud + push docker-archive' : ''}: median of ${RUNS}, ${os.cpus().length} cores`);
  console.log('ratios are to BuildKit (lower is faster)\n');
  const names = builders.map((b) => b.name);
  console.log(['case'.padEnd(36), ...names.flatMap((n) => [`${n} cold`.padEnd(15), `${n} warm`.padEnd(15)]), 'cold ratio'.padEnd(11), 'warm ratio'].join(''));
  for (const [name, row] of results) {
    const bk = row.get('buildkit')!;
    const t = row.get('tsbuild')!;
    console.log([name.padEnd(36), ...names.flatMap((n) => [f(row.get(n)!.cold).padEnd(15), f(row.get(n)!.warm).padEnd(15)]), r(t.cold, bk.cold).padEnd(11), r(t.warm, bk.warm)].join(''));
  }
  const seed = results.get('seed')!;
  const runs = results.get('20 RUN steps')!;
  const perStep = (n: string) => (runs.get(n)!.cold - seed.get(n)!.cold) / 19;
  console.log(`\nper-RUN-step overhead (cold): tsbuild ${f(perStep('tsbuild'))}, buildkit ${f(perStep('buildkit'))}: ratio ${r(perStep('tsbuild'), perStep('buildkit'))} (target <= 0.1)`);
  console.log(`per RUN step, median of ${stepRuns} interleaved runs of 20 RUN steps against the seed: ${ms(runDefault)} with the default network (target <= 20 ms), ${ms(runNone)} with --network=none; the floor (unshare + overlay mount + sh -c + tar | sha256sum of the upper dir, shell tools): ${ms(floorStep)}, ${(runDefault / floorStep).toFixed(2)}x`);
  console.log(`the default network's cost per RUN step: ${ms(networkPerStep)} (median of the paired differences default - none over 20 steps; target <= 5 ms)`);
  if (haveRunc) console.log(`per-RUN-step overhead through --runtime runc: ${f((runcRuns - runcSeed) / 19)} (the built-in sandbox: ${f(perStep('tsbuild'))})`);
  if (rootlessRatios.size > 0) {
    console.log(`per-RUN-step overhead rootless: ${f(perStep('rootless'))} (root: ${f(perStep('tsbuild'))}, BuildKit: ${f(perStep('buildkit'))})`);
    console.log(`rootless / root, paired runs (median of ${Math.max(RUNS, 5)} alternate pairs):`);
    for (const [name, ratio] of rootlessRatios) console.log(`  ${name.padEnd(36)} cold ${ratio.cold.toFixed(3)}  warm ${ratio.warm.toFixed(3)}`);
    const worst = Math.max(...[...rootlessRatios.values()].flatMap((x) => [x.cold, x.warm]));
    console.log(`  worst rootless / root ratio: ${worst.toFixed(3)} (target <= 1.5)`);
  }
  console.log(`big COPY build (cold, no -o) vs tar -c | sha256sum: ${f(copyOnly)} vs ${f(tarSha)} = ${(copyOnly / tarSha).toFixed(2)}x (target <= 2x)`);
  console.log(`-o type=docker (gzip) of the COPY case, cached build: ${f(gzipOut)}; tar -c | gzip -6 over the same files: ${f(gzipRef)} (${(gzipRef / gzipOut).toFixed(2)}x)`);
  console.log(`tsbuild peak RSS, RUN writing a 2 GiB layer, with -o: ${rss.toFixed(0)} MB (target < 300 MB)`);
  const nodeStart = median(startupTimes.get('node -e 0')!);
  console.log(`\nstart-up, median of ${startupRuns} (run alternately):`);
  for (const [name, times] of startupTimes) {
    const m = median(times);
    console.log(`  ${name.padEnd(28)} ${f(m)}${name === 'node -e 0' ? '' : `  (+${((m - nodeStart) * 1000).toFixed(0)} ms over node -e 0, ${r(m, nodeStart)}x)`}`);
  }
  const scale = { work, runs: RUNS, docker: DOCKER, root, rootfs, sh: (cmd: string) => sh(cmd), context, tsb: (storeRoot: string, args: string) => `node ${BIN} --root ${storeRoot} ${args}` };
  console.log(`\n${manyFilesBench(scale).join('\n')}`);
  console.log(`\n${bigStoreBench(scale, cases[0]![1]).join('\n')}`);
  console.log(`\n${bigLayersBench(scale).join('\n')}`);
  const registryLines = await registryBench({
    work,
    runs: RUNS,
    docker: DOCKER,
    rootfs,
    sh: (cmd) => sh(cmd),
    tsb: (storeRoot, args) => `node ${BIN} --root ${storeRoot} ${args}`,
    context,
    time: (cmd, before, runs = RUNS) => {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        if (before) sh(before);
        times.push(sh(cmd));
      }
      return median(times);
    },
  });
  console.log(`\n${registryLines.join('\n')}`);
  sh(`${DOCKER} rmi -f bench-out bench-busybox >/dev/null 2>&1 || true`);
  rmSync(work, { recursive: true, force: true });
}

await main();

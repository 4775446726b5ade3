/**
 * npm run bench: tsbuild against `docker build` (BuildKit, followed by `docker save` so both end in
 * a tarball), measured in the same run on this machine, reported as ratios.
 *
 * Cases: the seed (FROM + one RUN); 20 trivial RUN steps; COPY of 10,000 small files plus one
 * 256 MiB file. Also: per-RUN-step overhead, the big COPY against `tar -c | sha256sum` over the same
 * files, and tsbuild's peak RSS (on the COPY case and on a RUN that writes a 2 GiB layer).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'tsbuild.js');
const DOCKER = '/usr/bin/docker';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-bench-'));
const root = path.join(work, 'store');

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

function timeIt(cmd: string, env: Record<string, string> = {}, before?: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    before?.();
    times.push(sh(cmd, env));
  }
  return median(times);
}

/** Peak RSS of a command, in MB, from GNU time. */
function peakRss(cmd: string): number {
  const out = path.join(work, 'time.out');
  sh(`/usr/bin/time -f %M -o ${out} ${cmd}`);
  return Number(execFileSync('tail', ['-1', out], { encoding: 'utf8' }).trim()) / 1024;
}

function context(name: string, dockerfile: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

function busyboxRootfs(): string {
  const r = path.join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root']) mkdirSync(path.join(r, d), { recursive: true });
  sh(`cp /bin/busybox ${r}/bin/ && for a in $(${r}/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox ${r}/bin/$a; done && chmod 1777 ${r}/tmp && echo 'root:x:0:0:root:/root:/bin/sh' > ${r}/etc/passwd && echo 'root:x:0:' > ${r}/etc/group`);
  const tar = path.join(work, 'busybox.tar');
  sh(`tar --numeric-owner -C ${r} -cf ${tar} .`);
  return tar;
}

function bigContext(): string {
  const dir = context('copy', 'FROM bench-busybox\nCOPY . /data\n');
  const files = path.join(dir, 'small');
  for (let d = 0; d < 100; d++) {
    mkdirSync(path.join(files, String(d)), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(path.join(files, String(d), `f${f}.txt`), `file ${d}/${f}\n`.repeat(20));
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

function main(): void {
  const hasDocker = spawnSync(DOCKER, ['info'], { stdio: 'ignore' }).status === 0;
  if (!hasDocker) throw new Error('npm run bench needs dockerd running (bash scripts/install-deps.sh starts it)');
  const tsb = (args: string) => `node ${BIN} --root ${root} ${args}`;
  const rootfs = busyboxRootfs();
  sh(tsb(`import ${rootfs} bench-busybox`));
  sh(`${DOCKER} import ${rootfs} bench-busybox >/dev/null`);

  const seed = context('seed', 'FROM bench-busybox\nRUN echo "Hello world" > /tmp/newfile\n');
  const runs20 = context('runs20', `FROM bench-busybox\n${Array.from({ length: 20 }, (_, i) => `RUN echo ${i} > /f${i}`).join('\n')}\n`);
  const copy = bigContext();
  const out = path.join(work, 'out.tar');
  const cases: Array<[string, string]> = [['seed', seed], ['20 RUN steps', runs20], ['COPY 10k files + 256 MiB', copy]];
  const dockerEnv = { DOCKER_BUILDKIT: '1' };
  const results: Array<{ name: string; tsbuild: number; docker: number }> = [];
  for (const [name, dir] of cases) {
    const t = timeIt(tsb(`-q -t bench-out -o ${out} ${dir}`), {}, () => rmSync(out, { force: true }));
    const d = timeIt(`${DOCKER} build -q --no-cache -t bench-out ${dir} >/dev/null && ${DOCKER} save bench-out -o ${out}`, dockerEnv, () => rmSync(out, { force: true }));
    results.push({ name, tsbuild: t, docker: d });
  }
  const [seedR, runsR] = results;
  const perStep = (r: { tsbuild: number; docker: number }, k: 'tsbuild' | 'docker') => (r[k] - seedR![k]) / 19;
  const tsbStep = perStep(runsR!, 'tsbuild');
  const dockerStep = perStep(runsR!, 'docker');

  const tarSha = timeIt(`tar -C ${copy} -cf - . | sha256sum >/dev/null`);
  const copyOnly = timeIt(tsb(`-q -t bench-copy ${copy}`));
  const rss = peakRss(tsb(`-q -t bench-copy -o ${out} ${copy}`));
  const bigRun = context('bigrun', 'FROM bench-busybox\nRUN dd if=/dev/zero of=/big bs=1M count=2048 2>/dev/null\n');
  const rssBig = peakRss(tsb(`-q -t bench-big -o ${out} ${bigRun}`));
  rmSync(out, { force: true });

  const f = (s: number) => `${s.toFixed(3)}s`;
  console.log(`\ntsbuild vs docker build (BuildKit) + docker save, median of ${RUNS}, ${os.cpus().length} cores\n`);
  console.log('case                          tsbuild    buildkit   ratio (tsbuild/buildkit)');
  for (const r of results) console.log(`${r.name.padEnd(30)}${f(r.tsbuild).padEnd(11)}${f(r.docker).padEnd(11)}${(r.tsbuild / r.docker).toFixed(3)}`);
  console.log(`\nper-RUN-step overhead         ${f(tsbStep).padEnd(11)}${f(dockerStep).padEnd(11)}${(tsbStep / dockerStep).toFixed(3)}   (target <= 0.1)`);
  console.log(`big COPY build (no -o) vs tar -c | sha256sum: ${f(copyOnly)} vs ${f(tarSha)} = ${(copyOnly / tarSha).toFixed(2)}x   (target <= 2x)`);
  console.log(`tsbuild peak RSS, COPY case with -o: ${rss.toFixed(0)} MB; RUN writing a 2 GiB layer, with -o: ${rssBig.toFixed(0)} MB   (target < 300 MB)`);
  sh(`${DOCKER} rmi -f bench-out bench-busybox >/dev/null 2>&1 || true`);
  rmSync(work, { recursive: true, force: true });
}

main();

/**
 * The registry part of `npm run bench`: a ~200 MB four-layer image pulled from a loopback
 * docker-registry into an empty store and pushed to an empty registry, beside `skopeo copy` and
 * `docker pull` / `docker push` of the same image in the same run; and a CI scenario: a second
 * runner with an empty store building from the first runner's --cache-to, against a cold build.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';

export interface BenchTools {
  work: string;
  runs: number;
  /** Times a shell command (seconds); `before` runs first, untimed. */
  time(cmd: string, before?: string, runs?: number): number;
  sh(cmd: string): number;
  tsb(root: string, args: string): string;
  context(name: string, dockerfile: string): string;
  docker: string;
  /** The busybox rootfs tarball the other cases use. */
  rootfs: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Each run against a registry of its own, started untimed: every push goes to an empty one. */
async function withFreshRegistry(runs: number, body: (reg: TestRegistry) => number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const reg = await startRegistry();
    try {
      times.push(body(reg));
    } finally {
      await reg.stop();
    }
  }
  return median(times);
}

export async function registryBench(t: BenchTools): Promise<string[]> {
  const { work, docker } = t;
  const src = await startRegistry();
  const lines: string[] = [];
  try {
    const seedRoot = path.join(work, 'reg-seed');
    // four layers of ~48 MB each: base64 of random bytes (compresses to about 3/4, like real content)
    const layers = Array.from({ length: 4 }, (_, i) => `RUN head -c 36000000 /dev/urandom | base64 > /data${i}.txt`).join('\n');
    const dir = t.context('reg-image', `FROM bench-busybox\n${layers}\n`);
    t.sh(t.tsb(seedRoot, `import ${t.rootfs} bench-busybox`));
    t.sh(t.tsb(seedRoot, `-q -t bench-big:1 ${dir}`));
    const image = `${src.host}/bench/big:1`;
    t.sh(t.tsb(seedRoot, `push -q bench-big:1 ${image}`));

    const pullRoot = path.join(work, 'reg-pull');
    const tsPull = t.time(t.tsb(pullRoot, `pull -q ${image} >/dev/null`), `rm -rf ${pullRoot}`);
    const skopeoPull = t.time(`skopeo copy -q --src-tls-verify=false docker://${image} dir:${work}/skopeo-dir`, `rm -rf ${work}/skopeo-dir`);
    const dockerPull = t.time(`${docker} pull -q ${image} >/dev/null`, `${docker} rmi -f ${image} >/dev/null 2>&1 || true`);

    // push to an empty registry: the pulled image (its layers' blobs kept as pulled), and the same
    // layers with no compressed form in the store (as right after a build: gzip made now)
    const tsPushPulled = await withFreshRegistry(t.runs, (reg) => t.time(t.tsb(pullRoot, `push -q ${image} ${reg.host}/bench/big:1`), undefined, 1));
    const tsPush = await withFreshRegistry(t.runs, (reg) => t.time(t.tsb(pullRoot, `push -q ${image} ${reg.host}/bench/big:1`), `rm -rf ${pullRoot}/compressed`, 1));
    t.sh(`rm -rf ${pullRoot}`);
    t.sh(`${docker} save ${image} -o ${work}/big.tar`);
    const skopeoPush = await withFreshRegistry(t.runs, (reg) => t.time(`skopeo copy -q --dest-tls-verify=false docker-archive:${work}/big.tar docker://${reg.host}/bench/big:1`, undefined, 1));
    const dockerPush = await withFreshRegistry(t.runs, (reg) => t.time(`${docker} tag ${image} ${reg.host}/bench/big:1 && ${docker} push -q ${reg.host}/bench/big:1 >/dev/null`, undefined, 1));
    rmSync(`${work}/big.tar`, { force: true });
    const r = (a: number, b: number) => (a / b).toFixed(2);
    const f = (s: number) => `${s.toFixed(3)}s`;
    lines.push(`registry, a 4-layer ${'~195 MB'} image on a loopback docker-registry (median of ${t.runs}):`);
    lines.push(`  pull into an empty store: tsbuild ${f(tsPull)}, skopeo copy to dir: ${f(skopeoPull)}, docker pull ${f(dockerPull)}: ratio to skopeo ${r(tsPull, skopeoPull)} (target <= 1), to docker ${r(tsPull, dockerPull)}`);
    lines.push(`  push to an empty registry: tsbuild ${f(tsPushPulled)} (the pulled image, its blobs as pulled), ${f(tsPush)} (gzip made now); skopeo copy from docker-archive (gzip made now) ${f(skopeoPush)}, docker push ${f(dockerPush)}`);
    lines.push(`    ratios: pulled image to skopeo ${r(tsPushPulled, skopeoPush)} (target <= 1); gzip made now to skopeo ${r(tsPush, skopeoPush)}, to docker push ${r(tsPush, dockerPush)}`);

    // CI: runner 1 builds and exports its cache; runner 2 (empty store) builds the same commit from it
    const ci = t.context(
      'ci',
      [
        'FROM bench-busybox AS build',
        'RUN for i in $(seq 1 300); do head -c 1000000 /dev/urandom | sha256sum; done > /sums',
        'RUN head -c 40000000 /dev/urandom | base64 > /artifact',
        'FROM bench-busybox',
        'COPY --from=build /artifact /app/artifact',
        'RUN wc -c /app/artifact > /app/size',
        '',
      ].join('\n'),
    );
    const cacheRef = `${src.host}/bench/ci:cache`;
    const runner1 = path.join(work, 'runner1');
    t.sh(t.tsb(runner1, `import ${t.rootfs} bench-busybox`));
    t.sh(t.tsb(runner1, `-q -t ci:1 --cache-to type=registry,ref=${cacheRef},mode=max ${ci}`));
    const runner2 = path.join(work, 'runner2');
    const fresh = `rm -rf ${runner2} && ${t.tsb(runner2, `import ${t.rootfs} bench-busybox`)} >/dev/null`;
    const cold = t.time(t.tsb(runner2, `-q -t ci:1 ${ci}`), fresh);
    const fromCache = t.time(t.tsb(runner2, `-q -t ci:1 --cache-from type=registry,ref=${cacheRef} ${ci}`), fresh);
    lines.push(`CI runner with an empty store: cold build ${f(cold)}, with --cache-from the first runner's registry cache ${f(fromCache)}: ${(cold / fromCache).toFixed(1)}x faster (target >= 5x; docker buildx is not installed here, so BuildKit's own registry cache is not measured)`);
  } finally {
    await src.stop();
  }
  return lines;
}

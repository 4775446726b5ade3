// docker build's resource limits on RUN steps: memory (killed, and said so), pids, CPU quota and set, ulimits, /dev/shm.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTop, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

/** Step cgroups left under tsbuild's parents (every controller of the v1 hierarchy, or v2's). */
function leftovers(): string[] {
  const out: string[] = [];
  for (const c of ['memory', 'pids', 'cpu', 'cpuset', '']) {
    try {
      out.push(...readdirSync(`/sys/fs/cgroup/${c}${c ? '/' : ''}tsbuild`, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${c}/${d.name}`));
    } catch {
      // no such controller here
    }
  }
  return out;
}

describe.skipIf(lacks('root'))('RUN under resource limits', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('a step that allocates past --memory is killed, and the error says so on its line', async () => {
    const hog = context({ Dockerfile: 'FROM busybox\nRUN echo start\nRUN dd if=/dev/zero of=/dev/null bs=200M count=1 && echo survived\n' });
    const r = await tsbuild(root, ['build', '-q', '--memory', '64m', '--memory-swap', '64m', hog]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^tsbuild: \S+Dockerfile:3: RUN was killed for memory: process "\/bin\/sh -c dd if=\/dev\/zero of=\/dev\/null bs=200M count=1 && echo survived" needed more than --memory 64MiB \(exit code: 137\)$/);
    await ok(root, ['build', '-q', hog]); // without the limit it fits
    expect(leftovers()).toEqual([]);
  });

  it('a fork bomb stops at --pids-limit', async () => {
    const bomb = context({ Dockerfile: 'FROM busybox\nRUN for i in $(seq 1 60); do sleep 2 & done; wait\n' });
    const r = await tsbuild(root, ['build', '-q', '--pids-limit', '20', bomb]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/Dockerfile:2: RUN failed: process .* did not complete successfully: exit code: \d+$/);
    await ok(root, ['build', '-q', '--no-cache', '--pids-limit', '100', bomb]);
  });

  it('CPU quota, shares and set, ulimits and /dev/shm reach the step', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN nproc > /nproc && cat /proc/self/cgroup > /cgroups && ulimit -n > /nofile && ulimit -Hn > /nofile-hard && df -k /dev/shm | tail -1 > /shm\n' }), [
      '--cpu-quota', '50000', '--cpu-period', '100000', '--cpu-shares', '512', '--cpuset-cpus', '0', '--ulimit', 'nofile=512:1024', '--shm-size', '128m',
    ]);
    expect(read('nproc')).toBe('1\n');
    expect(read('cgroups')).toMatch(/cpu(,cpuacct)?:\/tsbuild\/|^0::\/tsbuild\//m);
    expect(read('nofile')).toBe('512\n');
    expect(read('nofile-hard')).toBe('1024\n');
    expect(read('shm').split(/\s+/)[1]).toBe('131072');
    expect(leftovers()).toEqual([]);
  });

  it('bad values are one line before anything runs', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\nRUN true\n' });
    for (const [args, message] of [
      [['--memory', 'lots'], 'tsbuild: invalid --memory "lots": expected a size such as 512m or 2g'],
      [['--memory', '1m'], 'tsbuild: invalid --memory "1m": the minimum is 6MB, as Docker\'s'],
      [['--memory-swap', '1g'], 'tsbuild: --memory-swap needs --memory'],
      [['--ulimit', 'files=1'], 'tsbuild: invalid --ulimit "files=1": expected NAME=SOFT[:HARD] with NAME one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack, as'],
      [['--cpuset-cpus', 'all'], 'tsbuild: invalid --cpuset-cpus "all": expected a list such as 0-1 or 0,2'],
    ] as Array<[string[], string]>) {
      const r = await tsbuild(root, ['build', '-q', ...args, dir]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(message);
    }
  });
});

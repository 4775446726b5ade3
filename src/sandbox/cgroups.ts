// A step's resource limits as a cgroup of its own (v1 controllers or the v2 unified tree), and whether it ran out of memory.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';

/** docker build's limits (--memory, --memory-swap, --cpu-*, --cpuset-cpus, --pids-limit). */
export interface ResourceLimits {
  /** Bytes. */
  memory?: number;
  /** Memory plus swap, bytes; -1 for unlimited swap (Docker's default: twice --memory). */
  memorySwap?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  pidsLimit?: number;
}

const ROOT = '/sys/fs/cgroup';

export function hasLimits(l: ResourceLimits | undefined): l is ResourceLimits {
  return !!l && Object.values(l).some((v) => v !== undefined);
}

function write(dir: string, file: string, value: string | number): void {
  try {
    writeFileSync(path.join(dir, file), String(value));
  } catch (err) {
    throw new UsageError(`cannot set ${file}=${value} for the step's cgroup (${dir}): ${(err as Error).message}`, { cause: err });
  }
}

/** cgroup v2 has no v1 hierarchy beside it: /sys/fs/cgroup is the unified tree itself. */
function unified(): boolean {
  return existsSync(path.join(ROOT, 'cgroup.controllers'));
}

/** A v1 controller's directory for tsbuild's steps, made with what its children need (cpuset's cpus and mems). */
function v1Parent(controller: string): string {
  const base = path.join(ROOT, controller);
  if (!existsSync(path.join(base, 'cgroup.procs'))) throw new UsageError(`the ${controller} cgroup controller is not mounted at ${base}: the limit cannot be applied`);
  const dir = path.join(base, 'tsbuild');
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  if (controller === 'cpuset') {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (readFileSync(path.join(dir, f), 'utf8').trim() === '') write(dir, f, readFileSync(path.join(base, f), 'utf8').trim());
    }
  }
  return dir;
}

/**
 * The cgroups one step runs in, made before it starts (the sandbox helper joins them first thing)
 * and removed after. With --memory, `oomKilled` says whether the kernel killed something of it for
 * memory.
 */
export class StepCgroup {
  private constructor(
    readonly dirs: string[],
    private readonly memoryDir: string | undefined,
    private readonly v2: boolean,
  ) {}

  static create(name: string, limits: ResourceLimits): StepCgroup {
    try {
      return unified() ? StepCgroup.createV2(name, limits) : StepCgroup.createV1(name, limits);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw err;
      throw new UsageError(`resource limits need a cgroup under ${ROOT} tsbuild can write, which takes root: a rootless build cannot set --memory, --cpu-*, --cpuset-cpus or --pids-limit`, { cause: err });
    }
  }

  private static createV1(name: string, l: ResourceLimits): StepCgroup {
    const dirs: string[] = [];
    const made = (controller: string) => {
      const dir = path.join(v1Parent(controller), name);
      mkdirSync(dir);
      dirs.push(dir);
      return dir;
    };
    let memoryDir: string | undefined;
    if (l.memory !== undefined) {
      memoryDir = made('memory');
      write(memoryDir, 'memory.limit_in_bytes', l.memory);
      const swap = l.memorySwap ?? l.memory * 2;
      if (existsSync(path.join(memoryDir, 'memory.memsw.limit_in_bytes'))) write(memoryDir, 'memory.memsw.limit_in_bytes', swap);
    }
    if (l.pidsLimit !== undefined) write(made('pids'), 'pids.max', l.pidsLimit > 0 ? l.pidsLimit : 'max');
    if (l.cpuQuota !== undefined || l.cpuPeriod !== undefined || l.cpuShares !== undefined) {
      const dir = made('cpu');
      if (l.cpuPeriod !== undefined) write(dir, 'cpu.cfs_period_us', l.cpuPeriod);
      if (l.cpuQuota !== undefined) write(dir, 'cpu.cfs_quota_us', l.cpuQuota);
      if (l.cpuShares !== undefined) write(dir, 'cpu.shares', l.cpuShares);
    }
    if (l.cpusetCpus !== undefined) {
      const dir = made('cpuset');
      write(dir, 'cpuset.mems', readFileSync(path.join(path.dirname(dir), 'cpuset.mems'), 'utf8').trim());
      write(dir, 'cpuset.cpus', l.cpusetCpus);
    }
    return new StepCgroup(dirs, memoryDir, false);
  }

  private static createV2(name: string, l: ResourceLimits): StepCgroup {
    const parent = path.join(ROOT, 'tsbuild');
    if (!existsSync(parent)) mkdirSync(parent);
    const wanted = ['memory', 'pids', 'cpu', 'cpuset'];
    for (const dir of [ROOT, parent]) {
      const available = readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/);
      const enable = wanted.filter((c) => available.includes(c)).map((c) => `+${c}`).join(' ');
      if (enable) appendFileSync(path.join(dir, 'cgroup.subtree_control'), enable);
    }
    const dir = path.join(parent, name);
    mkdirSync(dir);
    if (l.memory !== undefined) {
      write(dir, 'memory.max', l.memory);
      const swap = l.memorySwap ?? l.memory * 2;
      if (existsSync(path.join(dir, 'memory.swap.max'))) write(dir, 'memory.swap.max', swap < 0 ? 'max' : Math.max(0, swap - l.memory));
    }
    if (l.pidsLimit !== undefined) write(dir, 'pids.max', l.pidsLimit > 0 ? l.pidsLimit : 'max');
    if (l.cpuQuota !== undefined || l.cpuPeriod !== undefined) write(dir, 'cpu.max', `${l.cpuQuota && l.cpuQuota > 0 ? l.cpuQuota : 'max'} ${l.cpuPeriod ?? 100000}`);
    if (l.cpuShares !== undefined) write(dir, 'cpu.weight', Math.max(1, Math.min(10000, 1 + Math.round(((l.cpuShares - 2) * 9999) / 262142))));
    if (l.cpusetCpus !== undefined) write(dir, 'cpuset.cpus', l.cpusetCpus);
    return new StepCgroup([dir], l.memory !== undefined ? dir : undefined, true);
  }

  /** Whether the kernel's OOM killer struck inside the step (v1 memory.oom_control, v2 memory.events). */
  oomKilled(): boolean {
    if (!this.memoryDir) return false;
    try {
      const text = readFileSync(path.join(this.memoryDir, this.v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
      return Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0) > 0;
    } catch {
      return false;
    }
  }

  /** Removes the cgroups (the step's processes are gone by then; a cgroup may stay busy a moment after, so a few tries). */
  remove(): void {
    for (const dir of this.dirs) {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY') break; // gone already, or not ours to remove
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
      }
    }
  }
}

// Running one RUN command in the sandbox helper (native/sandbox.c), with its network.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { sandboxHelperPath } from '../native/index.js';
import { takeStepNetwork, type StepNetwork } from './network-pool.js';
import { spawnProcess, type Spawned } from './spawn.js';
import { inUserNamespace } from '../util/user-namespace.js';
import type { ExecUser } from './user.js';
import { SANDBOX_HOSTNAME } from './etc-files.js';
import type { StepRootfs } from '../overlay/mounts.js';

/** A RUN --mount, as the sandbox helper mounts it (see native/sandbox.c, --mount). */
export interface SandboxMount {
  type: 'bind' | 'tmpfs' | 'overlay';
  readOnly: boolean;
  /** bind: host path; tmpfs: size in bytes or ""; overlay: its options (overlay/mounts.ts), lowerdirs relative to the rootfs's base. */
  source: string;
  /** Absolute path in the rootfs; its mount point must exist (the init layer holds it). */
  target: string;
}

export interface SandboxSpec {
  /** cgroups the step joins first (its resource limits: cgroups.ts). */
  cgroups?: string[];
  /** ulimits of the command, `NAME:SOFT:HARD` (-1 unlimited). */
  rlimits?: string[];
  /** /dev/shm's size in bytes (default 64 MiB). */
  shmSize?: number;
  /** RUN --security=insecure: every capability, no seccomp, nothing of /proc or /sys masked. */
  insecure?: boolean;
  /** The step's rootfs (overlay/mounts.ts); overlay --mounts share its base. */
  rootfs: StepRootfs;
  /** Empty directory for this step: the rootfs's upper/ and work/, and rootfs/ where it is mounted, are made inside it. */
  stepDir: string;
  /** Host files to bind over files of the rootfs: rootfs path (relative) → host path. */
  binds: Record<string, string>;
  argv: string[];
  env: string[];
  cwd: string;
  user: ExecUser;
  mounts?: SandboxMount[];
  /**
   * none: a network namespace of its own with only loopback; host: the host's network; sandbox
   * (BuildKit's default): a namespace of its own with outbound access through slirp, and no way
   * to the host's loopback (made ahead of the step: network-pool.ts).
   */
  network?: 'none' | 'host' | 'sandbox';
  /** Where the command's stdout and stderr go (unless interactive). */
  output: Writable;
  /**
   * The command gets tsbuild's own standard input, output and error (a terminal: a shell the user
   * types into), and the terminal's Ctrl-C and Ctrl-\ are its own while it runs, not tsbuild's.
   */
  interactive?: boolean;
  signal?: AbortSignal;
}

export interface SandboxResult {
  exitCode: number;
  /** Why the sandbox could not start the command (a mount target it could not mount, ...). */
  setupError?: string;
  /** The upper dir: what the command changed, in overlay form. */
  upper: string;
}

function readFileOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}


/**
 * Runs one command in new mount, PID, UTS and IPC namespaces, pivot_root-ed into an overlay of the
 * given layers with a fresh upper dir (see native/sandbox.c). All mounts live and die in the
 * sandbox's mount namespace: nothing is left mounted, however the step ends.
 */
export async function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  const { upper, work } = spec.rootfs;
  const rootfs = path.join(spec.stepDir, 'rootfs');
  for (const d of [upper, work, rootfs]) mkdirSync(d, { recursive: true, mode: 0o755 });
  const args = ['--lowers-dir', spec.rootfs.base, '--overlay', spec.rootfs.options, '--rootfs', rootfs, '--hostname', SANDBOX_HOSTNAME];
  for (const image of spec.rootfs.images) args.push('--erofs', image);
  for (const [inside, host] of Object.entries(spec.binds)) args.push('--bind', `${host}:/${inside}`);
  args.push('--uid', String(spec.user.uid), '--gid', String(spec.user.gid));
  if (spec.user.groups.length > 0) args.push('--groups', spec.user.groups.join(','));
  args.push('--cwd', spec.cwd);
  for (const m of spec.mounts ?? []) args.push('--mount', m.type, m.readOnly ? '1' : '0', m.source, m.target);
  if (spec.network) args.push('--net', spec.network);
  if (spec.insecure) args.push('--insecure');
  if (inUserNamespace()) args.push('--userns');
  for (const dir of spec.cgroups ?? []) args.push('--cgroup', dir);
  for (const r of spec.rlimits ?? []) args.push('--rlimit', r);
  if (spec.shmSize !== undefined) args.push('--shm-size', String(spec.shmSize));
  let network: StepNetwork | undefined;
  if (spec.network === 'sandbox') {
    try {
      network = takeStepNetwork();
    } catch (err) {
      return { exitCode: 125, upper, setupError: (err as Error).message };
    }
    args.push('--netns', network.path);
  }
  // the environment goes through a file the helper reads and deletes: secrets exposed as env
  // values must not show in any command line (ps, /proc/*/cmdline)
  const envFile = path.join(spec.stepDir, 'env');
  writeFileSync(envFile, spec.env.map((e) => `${e}\0`).join(''), { mode: 0o600 });
  args.push('--env-file', envFile);
  const errorFile = path.join(spec.stepDir, 'setup-error');
  args.push('--error-file', errorFile);
  args.push('--', ...spec.argv);
  let stopped = () => {};
  let restoreSignals = () => {};
  try {
    if (spec.interactive) restoreSignals = terminalSignalsToChild();
    const child = await spawnProcess(sandboxHelperPath(), args, { env: {}, stdio: spec.interactive ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'from-child', 'from-child'] });
    stopped = stopOnAbort(child, spec.signal);
    const outputs = spec.interactive
      ? []
      : [child.stdio[1]!, child.stdio[2]!].map((stream) => {
          stream.pipe(spec.output, { end: false });
          return finished(stream).catch(() => undefined);
        });
    const [exit] = await Promise.all([child.exited, ...outputs]);
    const exitCode = exit.code ?? 128 + (os.constants.signals[exit.signal!] ?? 9);
    const setupError = exitCode === 125 ? readFileOrUndefined(errorFile) : undefined;
    return { exitCode, upper, ...(setupError ? { setupError } : {}) };
  } finally {
    stopped();
    restoreSignals();
    network?.stop();
  }
}

/**
 * While an interactive command runs, the signals its terminal sends (Ctrl-C, Ctrl-\) reach it
 * and not tsbuild, which would otherwise stop the build: tsbuild ignores them until it is done.
 * Returns what puts tsbuild's own handlers back.
 */
function terminalSignalsToChild(): () => void {
  const names = ['SIGINT', 'SIGQUIT'] as const;
  const saved = names.map((name) => [name, process.listeners(name)] as const);
  const ignore = () => {};
  for (const name of names) {
    process.removeAllListeners(name);
    process.on(name, ignore);
  }
  return () => {
    for (const [name, listeners] of saved) {
      process.removeListener(name, ignore);
      for (const l of listeners) process.on(name, l);
    }
  };
}

/** On abort: SIGTERM, then SIGKILL two seconds on if it still runs. Returns what undoes this. */
function stopOnAbort(child: Spawned, signal: AbortSignal | undefined): () => void {
  let killer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    child.kill('SIGTERM');
    killer = setTimeout(() => child.kill('SIGKILL'), 2000);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(killer);
  };
}

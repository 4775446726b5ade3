import { execa } from 'execa';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { sandboxHelperPath } from '../native/index.js';
import type { ExecUser } from './user.js';
import { SANDBOX_HOSTNAME } from './etc-files.js';

/** A RUN --mount, as the sandbox helper mounts it (see native/sandbox.c, --mount). */
export interface SandboxMount {
  type: 'bind' | 'tmpfs' | 'overlay';
  readOnly: boolean;
  /** bind: host path; tmpfs: size in bytes or ""; overlay: lowerdirs relative to lowersDir. */
  source: string;
  /** Absolute path in the rootfs; its mount point must exist (the init layer holds it). */
  target: string;
}

export interface SandboxSpec {
  /** Directory the lowerdir names are relative to (the store's l/). */
  lowersDir: string;
  /** Lowerdirs, top first: the init layer (absolute), then the image's layers (short link names). */
  lowers: string[];
  /** Empty directory for this step: upper/, work/ and rootfs/ are made inside it. */
  stepDir: string;
  /** Host files to bind over files of the rootfs: rootfs path (relative) → host path. */
  binds: Record<string, string>;
  argv: string[];
  env: string[];
  cwd: string;
  user: ExecUser;
  mounts?: SandboxMount[];
  /** none: a network namespace of its own with only loopback; host: the host's network. */
  network?: 'none' | 'host';
  /** Where the command's stdout and stderr go. */
  output: Writable;
  signal?: AbortSignal;
}

export interface SandboxResult {
  exitCode: number;
  /** The upper dir: what the command changed, in overlay form. */
  upper: string;
}

/** The kernel accepts one page of mount options. */
const MAX_MOUNT_OPTIONS = 4095;

export function overlayOptions(lowers: readonly string[], upper: string, work: string): string {
  return `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},index=off,redirect_dir=off,metacopy=off`;
}

/**
 * Runs one command in new mount, PID, UTS and IPC namespaces, pivot_root-ed into an overlay of the
 * given layers with a fresh upper dir (see native/sandbox.c). All mounts live and die in the
 * sandbox's mount namespace: nothing is left mounted, however the step ends.
 */
export async function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  const upper = path.join(spec.stepDir, 'upper');
  const work = path.join(spec.stepDir, 'work');
  const rootfs = path.join(spec.stepDir, 'rootfs');
  for (const d of [upper, work, rootfs]) mkdirSync(d, { recursive: true, mode: 0o755 });
  // Paths relative to the short-link dir (the helper mounts from there): shorter options, and no
  // host path shows in the step's /proc/mounts.
  const rel = (p: string) => (path.isAbsolute(p) ? path.relative(spec.lowersDir, p) : p);
  const options = overlayOptions(spec.lowers.map(rel), rel(upper), rel(work));
  if (options.length > MAX_MOUNT_OPTIONS) {
    throw new Error(`overlay mount options for ${spec.lowers.length} layers exceed one page (${options.length} bytes)`);
  }
  const args = ['--lowers-dir', spec.lowersDir, '--overlay', options, '--rootfs', rootfs, '--hostname', SANDBOX_HOSTNAME];
  for (const [inside, host] of Object.entries(spec.binds)) args.push('--bind', `${host}:/${inside}`);
  args.push('--uid', String(spec.user.uid), '--gid', String(spec.user.gid));
  if (spec.user.groups.length > 0) args.push('--groups', spec.user.groups.join(','));
  args.push('--cwd', spec.cwd);
  for (const m of spec.mounts ?? []) args.push('--mount', m.type, m.readOnly ? '1' : '0', m.source, m.target);
  if (spec.network) args.push('--net', spec.network);
  for (const e of spec.env) args.push('--env', e);
  args.push('--', ...spec.argv);
  const child = execa(sandboxHelperPath(), args, {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    env: {},
    extendEnv: false,
    cancelSignal: spec.signal,
    forceKillAfterDelay: 2000,
  });
  child.stdout?.pipe(spec.output, { end: false });
  child.stderr?.pipe(spec.output, { end: false });
  const result = await child;
  return { exitCode: result.exitCode ?? 128 + 9, upper };
}

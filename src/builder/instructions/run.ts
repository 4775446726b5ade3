// RUN: a command in the sandbox over the stage's layers; its upper dir becomes a layer.
import { readFileSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ExpandedRun } from '../expand-instruction.js';
import { heredocsInLine } from '../../dockerfile/parse.js';
import { BuildStepError } from '../../errors.js';
import { envGet, envSet } from '../../image/config.js';
import { makeInitLayer, MountPointError } from '../../overlay/init-layer.js';
import { stepRootfs } from '../../overlay/mounts.js';
import { haveSlirp, runInSandbox, type SandboxSpec } from '../../sandbox/run.js';
import { runInRuntime } from '../../sandbox/oci-runtime.js';
import { hasLimits, StepCgroup } from '../../sandbox/cgroups.js';
import { resolveUser } from '../../sandbox/user.js';
import { cachedStep, commitLayerDir, fail, viewOf, type StepContext } from '../step-context.js';
import { withFileLock } from '../../store/lock.js';
import { mountKeys, prepareMounts, type PreparedMounts } from '../run-mounts.js';
import type { RootfsView } from '../../fs/rootfs-view.js';
import { buildArgValue } from '../../plan/args.js';
import { shellOf } from './config.js';
import { goQuote } from '../../util/go-quote.js';

/** Whether the store's filesystem has (next to) no room left: what makes a step that writes fail. */
function storeIsFull(root: string): boolean {
  try {
    const st = statfsSync(root);
    return st.bavail * st.bsize < 1 << 20;
  } catch {
    return false;
  }
}

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** BuildKit's history form: `RUN |2 A=1 B=2 /bin/sh -c cmd # buildkit`. */
function createdBy(ctx: StepContext, argv: string[]): string {
  const byKey = new Map<string, string>();
  for (const a of ctx.state.args) byKey.set(a.key, envGet(ctx.state.env, a.key) ?? a.value ?? '');
  const args = [...byKey].map(([k, v]) => `${k}=${v}`);
  const prefix = args.length > 0 ? [`|${args.length}`, ...args] : [];
  return `RUN ${[...prefix, ...argv].join(' ')} # buildkit`;
}

interface Script {
  argv: string[];
  /** Host file to bind at /dev/pipes/<name>: a heredoc script with a #! line. */
  pipe?: { name: string; hostFile: string };
}

/**
 * The command line a RUN executes. Heredocs: `RUN <<EOF` alone runs the document as the script
 * (a file with its own #! interpreter when it has one); otherwise the shell gets the command with
 * the documents appended, as written.
 */
function script(ctx: StepContext, ins: ExpandedRun): Script {
  let args = ins.args;
  let pipe: Script['pipe'];
  if (ins.heredocs.length > 0) {
    if (args.length !== 1 || !ins.prependShell) fail(ctx, `parsing produced an invalid run command: ${args.join(' ')}`);
    const only = heredocsInLine(args[0]!.trim());
    const doc = ins.heredocs[0]!;
    if (only.length === 1 && args[0]!.trim().split(/\s+/).length === 1) {
      const data = doc.chomp ? doc.content.replace(/^\t+/gm, '') : doc.content;
      if (data.startsWith('#!')) {
        const hostFile = path.join(ctx.stepDir, `pipe-${doc.name}`);
        writeFileSync(hostFile, data, { mode: 0o755 });
        pipe = { name: doc.name, hostFile };
        args = [`/dev/pipes/${doc.name}`];
      } else args = [data];
    } else {
      args = [args[0] + ins.heredocs.map((h) => `\n${h.content}${h.name}`).join('')];
    }
  }
  return { argv: ins.prependShell ? [...shellOf(ctx), ...args] : args, pipe };
}

export async function run(ctx: StepContext, ins: ExpandedRun): Promise<void> {
  const security = ins.flags.string('security') ?? 'sandbox';
  if (security !== 'sandbox' && security !== 'insecure') fail(ctx, `security mode "${security}" is not supported (sandbox or insecure)`);
  if (security === 'insecure' && !ctx.options.allow?.includes('security.insecure')) {
    fail(ctx, 'RUN --security=insecure needs --allow security.insecure: the step would run with every capability and no seccomp filter');
  }
  const network = ins.network ?? ctx.options.network ?? 'default';
  if (!['none', 'host', 'default'].includes(network)) fail(ctx, `unsupported network mode "${network}" (none, host or default)`);
  const { argv, pipe } = script(ctx, ins);
  const config = ctx.state.config.config;
  const proxies = PROXY_ARGS.map((k) => [k, buildArgValue(ctx.options.buildArgs, k)]).filter(([, v]) => v !== undefined);
  const material = {
    argv,
    script: pipe ? readFileSync(pipe.hostFile, 'utf8') : undefined,
    env: ctx.state.env,
    user: config.User,
    workdir: config.WorkingDir,
    network,
    ...(security === 'insecure' ? { security } : {}), // keys of sandboxed steps stay as they were
    proxies,
    mounts: await mountKeys(ctx, ins),
    createdBy: createdBy(ctx, argv), // the history text a hit reuses
  };
  await cachedStep(ctx, material, () => runStep(ctx, ins, argv, pipe, network));
}

async function runStep(ctx: StepContext, ins: ExpandedRun, argv: string[], pipe: Script['pipe'], network: string): Promise<void> {
  const view = await viewOf(ctx);
  const prepared = await prepareMounts(ctx, ins, view);
  try {
    await runPrepared(ctx, ins, argv, pipe, network, view, prepared);
  } finally {
    for (const stop of prepared.cleanup) await stop(); // forwarded ssh agents
  }
}

async function runPrepared(ctx: StepContext, ins: ExpandedRun, argv: string[], pipe: Script['pipe'], network: string, view: RootfsView, prepared: PreparedMounts): Promise<void> {
  const config = ctx.state.config.config;
  let user;
  try {
    user = resolveUser(config.User, (p) => view.readFile(p));
  } catch (err) {
    throw new BuildStepError((err as Error).message, { location: ins.location, cause: err });
  }
  let env = [...ctx.state.env];
  if (envGet(env, 'HOME') === undefined) env = envSet(env, 'HOME', user.home);
  // proxy settings given with --build-arg reach RUN without an ARG, and stay out of the history
  for (const key of PROXY_ARGS) {
    const value = buildArgValue(ctx.options.buildArgs, key);
    if (value !== undefined && envGet(env, key) === undefined) env = envSet(env, key, value);
  }

  env = [...env, ...prepared.env];
  const initDir = path.join(ctx.stepDir, 'init');
  let bindable: string[];
  try {
    bindable = makeInitLayer(initDir, view, prepared.points);
  } catch (err) {
    if (err instanceof MountPointError) fail(ctx, `RUN --mount ${err.message}`, err);
    throw err;
  }
  const sandboxNet = network === 'default' && haveSlirp();
  const binds: Record<string, string> = Object.fromEntries(bindable.map((f) => [f, ctx.etcFiles[f]!]));
  if (sandboxNet && binds['etc/resolv.conf']) binds['etc/resolv.conf'] = ctx.etcFiles['sandbox/resolv.conf']!;
  if (pipe) binds[`dev/pipes/${pipe.name}`] = pipe.hostFile;

  const output = ctx.output;
  const limits = ctx.options.limits;
  const cgroup = hasLimits(limits) ? StepCgroup.create(`${path.basename(ctx.stepDir)}-${process.pid}-${Date.now().toString(36)}`, limits) : undefined;
  const spec: SandboxSpec = {
    rootfs: stepRootfs(ctx.store.layers, ctx.state.layers, initDir, ctx.stepDir),
    stepDir: ctx.stepDir,
    binds,
    argv,
    env,
    cwd: config.WorkingDir || '/',
    user,
    output,
    signal: ctx.options.signal,
    mounts: prepared.mounts,
    network: network === 'none' ? 'none' : sandboxNet ? 'sandbox' : 'host',
    insecure: ins.flags.string('security') === 'insecure',
    cgroups: cgroup?.dirs,
    rlimits: ctx.options.ulimits,
    shmSize: ctx.options.shmSize,
  };
  const runtime = ctx.options.runtime;
  const run = () => (runtime ? runInRuntime(runtime, spec) : runInSandbox(spec));
  let result: Awaited<ReturnType<typeof run>>;
  let oom: boolean;
  try {
    // sharing=locked cache mounts: one step at a time per cache, across builds
    result = await prepared.locked.reduce<() => Promise<Awaited<ReturnType<typeof run>>>>(
      (inner, lockFile) => () => withFileLock(lockFile, inner),
      run,
    )();
    oom = result.exitCode !== 0 && cgroup?.oomKilled() === true;
  } finally {
    cgroup?.remove();
  }
  ctx.options.signal?.throwIfAborted();
  if (result.setupError) {
    const why = result.setupError.startsWith('--mount') ? result.setupError : `could not set up the step: ${result.setupError}`;
    throw new BuildStepError(`RUN ${why}`, { location: ins.location });
  }
  if (oom) {
    const mib = limits!.memory! / (1 << 20);
    throw new BuildStepError(`RUN was killed for memory: process ${goQuote(argv.join(' '))} needed more than --memory ${Number.isInteger(mib) ? `${mib}MiB` : `${limits!.memory} bytes`} (exit code: ${result.exitCode})`, {
      location: ins.location,
      exitCode: 1,
    });
  }
  if (result.exitCode !== 0) {
    // BuildKit's words: the arguments joined, quoted as Go's %q quotes them; a full store is likely why
    const full = storeIsFull(ctx.store.root) ? ` (the store's filesystem is full: no space left on ${ctx.store.root})` : '';
    throw new BuildStepError(`RUN failed: process ${goQuote(argv.join(' '))} did not complete successfully: exit code: ${result.exitCode}${full}`, {
      location: ins.location,
      exitCode: 1,
    });
  }
  await commitLayerDir(ctx, result.upper, createdBy(ctx, argv));
}

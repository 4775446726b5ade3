// A RUN step that missed the cache: its mounts, the sandbox (or an OCI runtime), its layer.
import { rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type { ExpandedRun } from '../expand-instruction.js';
import { BuildStepError } from '../../errors.js';
import { envGet, envSet } from '../../image/config.js';
import { makeInitLayer, MountPointError } from '../../overlay/init-layer.js';
import { stepRootfs } from '../../overlay/mounts.js';
import { imageMountFailed } from '../../overlay/erofs-support.js';
import { runInSandbox, type SandboxSpec } from '../../sandbox/run.js';
import { stepNetworkUnavailable } from '../../sandbox/network-pool.js';
import { sandboxNetwork } from '../../sandbox/etc-files.js';
import { runInRuntime } from '../../sandbox/oci-runtime.js';
import { hasLimits, StepCgroup } from '../../sandbox/cgroups.js';
import { resolveUser } from '../../sandbox/user.js';
import { commitLayerDir, fail, viewOf, type StepContext } from '../step-context.js';
import { withFileLock } from '../../store/lock.js';
import { prepareMounts, type PreparedMounts } from '../run-mounts.js';
import type { RootfsView } from '../../fs/rootfs-view.js';
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

/** What run.ts worked out of the instruction: the command line, its heredoc script, the network, proxies, the history text. */
export interface RunCommand {
  argv: string[];
  /** Host file to bind at /dev/pipes/<name>: a heredoc script with a #! line. */
  pipe?: { name: string; hostFile: string };
  network: string;
  /** Proxy settings given with --build-arg, as [name, value]. */
  proxies: ReadonlyArray<readonly [string, string]>;
  createdBy: string;
}

/** Runs a RUN step that missed the cache: its mounts, the sandbox, and its layer from the upper dir. */
export async function runStep(ctx: StepContext, ins: ExpandedRun, command: RunCommand): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const view = await viewOf(ctx);
    const prepared = await prepareMounts(ctx, ins, view);
    try {
      await runPrepared(ctx, ins, command, view, prepared);
      return;
    } catch (err) {
      if (!(err instanceof ImageMountError) || attempt > 0) throw err;
      // this kernel cannot mount the layers' images after all: they are extracted, and the step run again
      imageMountFailed();
      for (const d of ['upper', 'work', 'init']) rmSync(path.join(ctx.stepDir, d), { recursive: true, force: true });
    } finally {
      for (const stop of prepared.cleanup) await stop(); // forwarded ssh agents
    }
  }
}

/** The sandbox could not mount a layer's EROFS image (nothing of the step ran). */
class ImageMountError extends Error {}

async function runPrepared(ctx: StepContext, ins: ExpandedRun, command: RunCommand, view: RootfsView, prepared: PreparedMounts): Promise<void> {
  const { argv, pipe, network } = command;
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
  for (const [key, value] of command.proxies) if (envGet(env, key) === undefined) env = envSet(env, key, value);

  env = [...env, ...prepared.env];
  const initDir = path.join(ctx.stepDir, 'init');
  let bindable: string[];
  try {
    bindable = makeInitLayer(initDir, view, prepared.points);
  } catch (err) {
    if (err instanceof MountPointError) fail(ctx, `RUN --mount ${err.message}`, err);
    throw err;
  }
  // asked only once a step runs: a fully cached build need not load libslirp to find it there
  const noNetwork = network === 'default' ? stepNetworkUnavailable() : undefined;
  if (noNetwork) ctx.warn(`libslirp cannot be loaded (${noNetwork}): RUN steps share the host network instead of a network of their own`);
  const sandbox = sandboxNetwork(network, !noNetwork, ctx.etcFiles, bindable);
  const binds = sandbox.binds;
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
    network: sandbox.network,
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
  if (result.setupError?.startsWith('mount erofs image') && spec.rootfs.images.length > 0) throw new ImageMountError(result.setupError);
  if (result.setupError) {
    const why = result.setupError.startsWith('--mount') ? result.setupError : `could not set up the step: ${result.setupError}`;
    throw new BuildStepError(`RUN ${why}`, { location: ins.location });
  }
  if (result.exitCode !== 0 && ctx.options.onError === 'shell') await (await import('./debug-shell.js')).debugShell(ctx, spec, runtime);
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
  await commitLayerDir(ctx, result.upper, command.createdBy);
}

import path from 'node:path';
import { PassThrough } from 'node:stream';
import { BuildStepError } from '../../errors.js';
import { envGet, envSet } from '../../image/config.js';
import { makeInitLayer } from '../../overlay/init-layer.js';
import { runInSandbox } from '../../sandbox/run.js';
import { resolveUser } from '../../sandbox/user.js';
import { commitLayerDir, fail, viewOf, type StepContext } from '../step-context.js';
import { commandLine } from './metadata.js';

/** BuildKit's history form: `RUN |2 A=1 B=2 /bin/sh -c cmd # buildkit`. */
function createdBy(ctx: StepContext, argv: string[]): string {
  const env = ctx.state.config.config.Env;
  const args = ctx.state.args.map((a) => `${a.key}=${envGet(env, a.key) ?? a.value ?? ''}`);
  const prefix = args.length > 0 ? [`|${args.length}`, ...args] : [];
  return `RUN ${[...prefix, ...argv].join(' ')} # buildkit`;
}

export async function run(ctx: StepContext): Promise<void> {
  if (ctx.ins.flags.length > 0) fail(ctx, `RUN --${ctx.ins.flags[0]!.name} is not supported yet`);
  const { argv } = commandLine(ctx);
  if (argv.length === 0 || (argv.length === 1 && argv[0] === '')) fail(ctx, 'RUN requires a command');
  const view = await viewOf(ctx);
  const config = ctx.state.config.config;
  let user;
  try {
    user = resolveUser(config.User, (p) => view.readFile(p));
  } catch (err) {
    throw new BuildStepError((err as Error).message, { location: ctx.ins.location, cause: err });
  }
  let env = ctx.state.runEnv();
  if (envGet(env, 'HOME') === undefined) env = envSet(env, 'HOME', user.home);

  const initDir = path.join(ctx.stepDir, 'init');
  const bindable = makeInitLayer(initDir, view);
  const binds = Object.fromEntries(bindable.map((f) => [f, ctx.etcFiles[f]!]));
  const lowers = [initDir, ...ctx.state.layers.map((l) => l.link).reverse()];
  for (const l of ctx.state.layers) ctx.store.layers.ensureLink(l);

  const output = ctx.options.runOutput ?? new PassThrough().resume();
  const result = await runInSandbox({
    lowersDir: ctx.store.layers.linksDir,
    lowers,
    stepDir: ctx.stepDir,
    binds,
    argv,
    env,
    cwd: config.WorkingDir || '/',
    user,
    output,
    signal: ctx.options.signal,
  });
  ctx.options.signal?.throwIfAborted();
  if (result.exitCode !== 0) {
    const shown = ctx.ins.json ? JSON.stringify(argv) : argv.join(' ');
    throw new BuildStepError(`RUN failed: process "${shown}" did not complete successfully: exit code: ${result.exitCode}`, {
      location: ctx.ins.location,
      exitCode: 1,
    });
  }
  await commitLayerDir(ctx, result.upper, createdBy(ctx, argv));
}


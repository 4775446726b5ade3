import path from 'node:path';
import { BuildStepError } from '../../errors.js';
import { resolveUser } from '../../sandbox/user.js';
import { ContextSourceError, resolveContextSources, type ContextSource } from '../context-source.js';
import { LayerPlan } from '../copy-plan.js';
import type { Ownership } from '../materialize-dir.js';
import { commitLayerTar, fail, viewOf, type StepContext } from '../step-context.js';
import { expand } from './key-values.js';

const SUPPORTED_FLAGS = new Set(['chown', 'chmod']);

function ownership(ctx: StepContext, spec: string | undefined, readFile: (p: string) => string | undefined): Ownership {
  if (!spec) return { uid: 0, gid: 0 };
  const [userPart = '', groupPart] = spec.split(':', 2);
  try {
    const u = resolveUser(userPart, readFile);
    const uid = u.uid;
    // Docker: a user or uid without a group uses the uid as the gid.
    const gid = groupPart === undefined || groupPart === '' ? uid : resolveUser(`${userPart}:${groupPart}`, readFile).gid;
    return { uid, gid };
  } catch (err) {
    fail(ctx, `COPY --chown=${spec}: ${(err as Error).message}`, err);
  }
}

function parseChmod(ctx: StepContext, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-7]{3,4}$/.test(value)) fail(ctx, `COPY --chmod=${value}: expected an octal mode such as 755`);
  return parseInt(value, 8);
}

/**
 * COPY from the build context: files keep their mode and mtime and belong to root (or --chown);
 * a directory source copies its contents; the destination is resolved inside the image's rootfs
 * (symlinks followed within it) and written into a fresh layer directory.
 */
export async function copy(ctx: StepContext): Promise<void> {
  for (const f of ctx.ins.flags) {
    if (!SUPPORTED_FLAGS.has(f.name)) fail(ctx, `COPY --${f.name} is not supported yet`);
  }
  const flag = (name: string) => ctx.ins.flags.find((f) => f.name === name)?.value;
  const words = (ctx.ins.json ?? ctx.ins.args.trim().split(/[ \t]+/).filter(Boolean)).map((w) => expand(ctx, w));
  if (words.length < 2) fail(ctx, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  const dest = words.at(-1)!;
  const srcs = words.slice(0, -1);
  const workdir = ctx.state.config.config.WorkingDir || '/';
  const destIsDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const destAbs = path.posix.resolve(workdir, dest);

  const view = await viewOf(ctx);
  const readFile = (p: string) => view.readFile(p);
  const owner = ownership(ctx, flag('chown'), readFile);
  const mode = parseChmod(ctx, flag('chmod'));

  let sources: ContextSource[];
  try {
    sources = srcs.flatMap((s) => resolveContextSources(ctx.contextDir, s, ctx.ignore));
  } catch (err) {
    if (err instanceof ContextSourceError) {
      throw new BuildStepError(`COPY failed: ${err.message}`, { location: ctx.ins.location, cause: err });
    }
    throw err;
  }
  if (sources.length > 1 && !destIsDir) {
    fail(ctx, 'When using COPY with more than one source file, the destination must be a directory and end with a /');
  }

  const plan = new LayerPlan(view, Math.floor(Date.now() / 1000));
  const opts = { owner, mode, ignore: ctx.ignore };
  for (const src of sources) {
    if (src.stat.isDirectory()) {
      const target = view.resolve(destAbs);
      const dir = plan.dir(target.path, { ...owner, mode: mode ?? src.stat.mode & 0o7777 });
      plan.addDirContents(dir, src.host, src.rel, opts);
      continue;
    }
    const resolvedDest = view.resolve(destAbs);
    const intoDir = destIsDir || resolvedDest.entry?.stat.isDirectory() === true;
    const dirPath = intoDir ? resolvedDest.path : view.resolve(path.posix.dirname(destAbs)).path;
    const name = intoDir ? path.posix.basename(src.rel) : path.posix.basename(destAbs);
    plan.addSource(plan.dir(dirPath, { ...owner, mode: 0o755 }), name, src.host, src.rel, opts, src.stat);
  }
  const flags = ctx.ins.flags.map((f) => `--${f.name}=${f.value ?? ''} `).join('');
  await commitLayerTar(ctx, (sink) => plan.write(sink), `COPY ${flags}${srcs.join(' ')} ${dest} # buildkit`);
}

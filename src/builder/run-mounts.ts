// RUN --mount: each mount's source on the host, its part of the cache key, its mount point.
import { chmodSync, chownSync, copyFileSync, linkSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import type { EntryStat } from '../fs/scan-dir.js';
import path from 'node:path';
import type { RunMount } from '../dockerfile/run-mount.js';
import type { ExpandedRun } from './expand-instruction.js';
import { components } from '../fs/resolve.js';
import type { RootfsView } from '../fs/rootfs-view.js';
import type { SandboxMount } from '../sandbox/run.js';
import { subtreeOverlay } from '../overlay/mounts.js';
import { CacheMounts } from '../store/cache-mounts.js';
import type { LayerMeta } from '../store/layers.js';
import { hashSources } from './content-hash.js';
import { ContextTree, isSent, resolveSources, SourceError } from './source-tree.js';
import { fail, imageNamed, viewOfLayers, type StepContext } from './step-context.js';

/** A mount point the init layer must hold (a directory, or a file for a file bind). */
export interface MountPoint {
  path: string;
  file: boolean;
}

export interface PreparedMounts {
  mounts: SandboxMount[];
  points: MountPoint[];
  /** Secrets exposed as environment variables (never recorded anywhere). */
  env: string[];
  /** Lock files of cache mounts with sharing=locked: the step holds them while it runs. */
  locked: string[];
  /** What to stop when the step ends (forwarded ssh agents). */
  cleanup: Array<() => Promise<void>>;
}

/** A secret given on the command line: `--secret id=ID,src=PATH` or `id=ID,env=VAR`. */
export interface SecretSource {
  src?: string;
  env?: string;
}

function secretValue(ctx: StepContext, id: string): Buffer | undefined {
  const s = ctx.options.secrets?.[id];
  if (!s) return undefined;
  if (s.env !== undefined) {
    const v = process.env[s.env];
    return v === undefined ? undefined : Buffer.from(v);
  }
  return s.src !== undefined ? readFileSync(s.src) : undefined;
}

/** The layers of a stage or image named by `from`. */
async function layersOf(ctx: StepContext, from: string): Promise<LayerMeta[]> {
  const stage = ctx.stages.get(from.toLowerCase());
  if (stage) return stage.layers;
  return (await imageNamed(ctx, from, 'RUN --mount from')).layers;
}

/**
 * A copy of part of the context with .dockerignore applied: directories made, files hard-linked
 * when the mount is read-only (copied when the step may write, or across filesystems).
 */
function filteredTree(tree: ContextTree, comps: readonly string[], st: EntryStat, dest: string, readOnly: boolean): void {
  const place = (from: readonly string[], to: string, s: EntryStat) => {
    const host = tree.hostPath(from);
    if (s.isDirectory()) {
      mkdirSync(to, { mode: s.mode & 0o7777 });
      for (const name of tree.readdir(from)) {
        const child = [...from, name];
        const cs = tree.lstat(child);
        if (!cs) continue;
        if (!isSent(tree, child.join('/'), cs)) continue;
        place(child, path.join(to, name), cs);
      }
    } else if (s.isSymbolicLink()) symlinkSync(readlinkSync(host), to);
    else if (s.isFile()) {
      if (!readOnly) copyFileSync(host, to);
      else {
        try {
          linkSync(host, to);
        } catch {
          copyFileSync(host, to);
        }
      }
    }
  };
  place(comps, dest, st);
}

/** A read-only view of part of a stage's rootfs: an overlay of that directory in each layer. */
function stageSource(ctx: StepContext, view: RootfsView, layers: LayerMeta[], source: string, m: RunMount, n: number): SandboxMount {
  const resolved = view.resolve(source);
  if (!resolved.entry) fail(ctx, `RUN --mount: ${source} not found in ${m.from}`);
  if (!resolved.entry.stat.isDirectory()) return { type: 'bind', readOnly: true, source: resolved.entry.hostPath, target: m.target! };
  const mount = subtreeOverlay(ctx.store.layers, view, layers, components(resolved.path), path.join(ctx.stepDir, `empty-${n}`));
  return { type: 'overlay', readOnly: true, source: mount.options, target: m.target! };
}

/**
 * What a RUN's mounts contribute to its cache key: each mount's spec, plus the content of a bind
 * from the context (hashed through the stat cache) or the layers of the stage it binds. Secrets'
 * values are not part of it, as in BuildKit.
 */
export async function mountKeys(ctx: StepContext, ins: ExpandedRun): Promise<unknown[]> {
  const workdir = ctx.state.config.config.WorkingDir || '/';
  const keys: unknown[] = [];
  for (const m of ins.mounts) {
    const key: Record<string, unknown> = { ...m, target: m.target && path.posix.resolve(workdir, m.target) };
    if (m.type === 'bind' && m.from) {
      const stage = ctx.stages.get(m.from.toLowerCase());
      key.content = stage ? (stage.topChainId ?? 'scratch') : (await imageNamed(ctx, m.from, 'RUN --mount from')).layers.at(-1)?.chainId ?? 'scratch';
    } else if (m.type === 'bind') {
      const tree = new ContextTree(ctx.contextDir, ctx.ignore);
      try {
        key.content = hashSources(tree, resolveSources(tree, m.source ?? '.'), ctx.stats);
      } catch (err) {
        if (err instanceof SourceError) fail(ctx, `RUN --mount: ${err.message}`, err);
        throw err;
      }
    }
    keys.push(key);
  }
  return keys;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

/**
 * A step's mounts as BuildKit hands them to runc: sorted by target (parents before what they
 * hold), the last of two with one target winning. The init layer holds the mount points on the
 * image's filesystem; those inside another mount are made there by the sandbox.
 */
function arrange(ctx: StepContext, out: PreparedMounts, view: RootfsView): void {
  const byTarget = new Map<string, number>();
  out.mounts.forEach((m, i) => byTarget.set(m.target, i));
  const kept = [...byTarget.values()].sort((a, b) => Buffer.compare(Buffer.from(out.mounts[a]!.target), Buffer.from(out.mounts[b]!.target)));
  const resolved = kept.map((i) => view.resolve(out.mounts[i]!.target).path);
  for (const [k, i] of kept.entries()) {
    const target = out.mounts[i]!.target;
    if (target === '/') fail(ctx, 'RUN --mount: target / would replace the root filesystem');
    if (under(target, '/proc') || under(resolved[k]!, '/proc')) fail(ctx, `RUN --mount: target ${target} cannot be mounted because it is inside /proc`);
  }
  const points = kept.map((i) => out.points[i]!);
  out.mounts = kept.map((i) => out.mounts[i]!);
  out.points = points.filter((_, k) => !resolved.some((r, j) => j !== k && r !== resolved[k] && under(resolved[k]!, r)));
}

/**
 * Prepares a RUN's --mount list: where each mount's content comes from on the host, and the mount
 * points the init layer must hold so that nothing of them lands in the step's layer.
 */
export async function prepareMounts(ctx: StepContext, ins: ExpandedRun, view: RootfsView): Promise<PreparedMounts> {
  const out: PreparedMounts = { mounts: [], points: [], env: [], locked: [], cleanup: [] };
  try {
    await prepareEach(ctx, ins, out);
    arrange(ctx, out, view);
  } catch (err) {
    for (const stop of out.cleanup) await stop();
    throw err;
  }
  return out;
}

async function prepareEach(ctx: StepContext, ins: ExpandedRun, out: PreparedMounts): Promise<void> {
  const workdir = ctx.state.config.config.WorkingDir || '/';
  for (const [n, mount] of ins.mounts.entries()) {
    const m = { ...mount }; // its target is resolved against WORKDIR here
    if (m.target) m.target = path.posix.resolve(workdir, m.target);
    switch (m.type) {
      case 'bind': {
        let source: string;
        if (m.from) {
          const layers = await layersOf(ctx, m.from);
          const view = await viewOfLayers(ctx, layers);
          const mount = stageSource(ctx, view, layers, m.source ?? '/', m, n);
          if (!m.readOnly) fail(ctx, 'RUN --mount=type=bind,from=...,rw is not supported yet');
          out.mounts.push(mount);
          out.points.push({ path: m.target!, file: mount.type === 'bind' });
          continue;
        }
        const tree = new ContextTree(ctx.contextDir, ctx.ignore);
        let entries;
        try {
          entries = resolveSources(tree, m.source ?? '.');
        } catch (err) {
          if (err instanceof SourceError) fail(ctx, `RUN --mount: ${err.message}`, err);
          throw err;
        }
        source = tree.hostPath(entries[0]!.comps);
        if (!m.readOnly || !ctx.ignore.empty) {
          // the step sees the context as the build does (without what .dockerignore excludes), and
          // writes to an rw bind are thrown away with the step: it gets a tree of its own
          const copy = path.join(ctx.stepDir, `bind-${n}`);
          filteredTree(tree, entries[0]!.comps, entries[0]!.stat, copy, m.readOnly);
          source = copy;
        }
        out.mounts.push({ type: 'bind', readOnly: m.readOnly, source, target: m.target! });
        out.points.push({ path: m.target!, file: !entries[0]!.stat.isDirectory() });
        break;
      }
      case 'cache': {
        const { dir, lockFile } = new CacheMounts(ctx.store).open(m.id ?? m.target!, m);
        if (m.sharing === 'locked') out.locked.push(lockFile);
        out.mounts.push({ type: 'bind', readOnly: m.readOnly, source: dir, target: m.target! });
        out.points.push({ path: m.target!, file: false });
        break;
      }
      case 'tmpfs':
        out.mounts.push({ type: 'tmpfs', readOnly: false, source: m.size ? String(m.size) : '', target: m.target! });
        out.points.push({ path: m.target!, file: false });
        break;
      case 'secret': {
        const id = m.id ?? path.posix.basename(m.target!);
        const value = secretValue(ctx, id);
        if (value === undefined) {
          if (m.required) fail(ctx, `secret ${id}: not provided (use --secret id=${id},src=FILE or env=VAR)`);
          continue;
        }
        if (m.env) out.env.push(`${m.env}=${value.toString()}`);
        if (m.env && !m.target) continue;
        const file = path.join(ctx.stepDir, `secret-${n}`);
        writeFileSync(file, value, { mode: 0o600 });
        chownSync(file, m.uid ?? 0, m.gid ?? 0);
        chmodSync(file, m.mode ?? 0o400);
        const target = m.target ?? `/run/secrets/${id}`;
        out.mounts.push({ type: 'bind', readOnly: true, source: file, target });
        out.points.push({ path: target, file: true });
        break;
      }
      case 'ssh': {
        // BuildKit's: the agent --ssh ID names, at /run/buildkit/ssh_agent.N, with SSH_AUTH_SOCK pointing at the first
        const id = m.id ?? 'default';
        const paths = ctx.options.ssh?.[id];
        if (!paths) {
          if (m.required) fail(ctx, `no SSH key ${JSON.stringify(id)} forwarded from the client (use --ssh ${id === 'default' ? 'default' : `${id}=SOCKET|KEY`})`);
          continue;
        }
        const dir = path.join(ctx.stepDir, `ssh-${n}`);
        mkdirSync(dir);
        const { forwardAgent } = await import('./ssh-agent.js'); // net and child_process: loaded by the step that needs them
        const agent = await forwardAgent(paths, dir, { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
        out.cleanup.push(agent.close);
        const target = m.target ?? `/run/buildkit/ssh_agent.${n}`;
        if (!out.env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) out.env.push(`SSH_AUTH_SOCK=${target}`);
        out.mounts.push({ type: 'bind', readOnly: false, source: agent.socket, target });
        out.points.push({ path: target, file: true });
        break;
      }
    }
  }
}

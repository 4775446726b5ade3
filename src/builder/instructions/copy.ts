// COPY and ADD: sources resolved, planned into a layer, cached by content.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CopyInstruction } from '../../dockerfile/instructions.js';
import { BuildStepError } from '../../errors.js';
import { RootfsView } from '../../fs/rootfs-view.js';
import { resolveUser } from '../../sandbox/user.js';
import { archiveKind, download, isUrl, unpackArchive, type Download } from '../add-sources.js';
import { LayerPlan, type Ownership } from '../copy-plan.js';
import { ContextTree, resolveSources, RootfsTree, SourceError, type SourceEntry, type SourceTree } from '../source-tree.js';
import { cachedStep, commitLayerTar, fail, imageNamed, viewOf, viewOfLayers, type StepContext } from '../step-context.js';
import { hashSources } from '../content-hash.js';
import { copyHygiene, type KeyFile } from './copy-hygiene.js';
import type { StepRecord } from '../../store/step-records.js';

function ownership(ctx: StepContext, spec: string | undefined, readFile: (p: string) => string | undefined): Ownership | undefined {
  if (!spec) return undefined;
  const [userPart = '', groupPart] = spec.split(':', 2);
  try {
    const user = resolveUser(userPart, readFile);
    // BuildKit: a numeric uid without a group uses the uid as the gid; a name uses its primary group
    const noGroup = groupPart === undefined || groupPart === '';
    const gid = noGroup ? (/^\d+$/.test(userPart) ? user.uid : user.gid) : resolveUser(`${userPart}:${groupPart}`, readFile).gid;
    return { uid: user.uid, gid };
  } catch (err) {
    fail(ctx, `${ctx.ins.keyword} --chown=${spec}: ${(err as Error).message}`, err);
  }
}

function parseChmod(ctx: StepContext, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = /^[0-7]+$/.test(value) ? parseInt(value, 8) : NaN;
  if (Number.isNaN(n) || n > 0o7777) fail(ctx, `invalid chmod parameter: '${value}'. it should be octal string and between 0 and 07777`);
  return n;
}

/**
 * Where COPY --from reads: an earlier stage (by name or index), else an image; and what identifies
 * its content (its top chain ID). The tree opens only when the step runs: a cache hit keyed by that
 * identity never reads (nor, for an imported cache, downloads) the source's files.
 */
async function sourceTree(ctx: StepContext, ins: CopyInstruction): Promise<{ open: () => Promise<SourceTree>; identity?: string }> {
  if (!ins.from) {
    const tree = new ContextTree(ctx.contextDir, ctx.ignore);
    return { open: async () => tree };
  }
  const from = ins.from;
  const stage = ctx.stages.get(from.toLowerCase());
  if (stage) return { open: async () => new RootfsTree(`stage ${from}`, await viewOfLayers(ctx, stage.layers)), identity: stage.topChainId ?? 'scratch' };
  if (/^\d+$/.test(from)) fail(ctx, `invalid from flag value ${from}: stage ${from} is not defined before this one`);
  const image = await imageNamed(ctx, from, `${ins.keyword} --from`);
  return { open: async () => new RootfsTree(`image ${from}`, await viewOfLayers(ctx, image.layers)), identity: image.layers.at(-1)?.chainId ?? 'scratch' };
}

/**
 * COPY and ADD: sources from the build context (after .dockerignore), another stage, an image,
 * heredocs, or (ADD) URLs and local archives, which are unpacked. Files keep mode and mtime and
 * belong to root unless --chown; a directory source copies its contents; the destination is resolved
 * inside the image's rootfs (symlinks followed within it) and the result is streamed into a layer.
 */
export async function copy(ctx: StepContext, ins: CopyInstruction): Promise<void> {
  const isAdd = ins.keyword === 'ADD';
  if (ins.excludes.length > 0) fail(ctx, `${ins.keyword} --exclude is not supported yet`);
  if (ins.flags.used('parents')) fail(ctx, 'COPY --parents is not supported yet');
  const { sources: srcs, dest, chown, checksum, inline } = ins;
  const mode = parseChmod(ctx, ins.chmod);
  if (checksum !== undefined && (srcs.length !== 1 || !isUrl(srcs[0]!))) {
    fail(ctx, srcs.length !== 1 ? 'checksum can\'t be specified for multiple sources' : 'checksum requires HTTP(S) or Git sources');
  }
  if (!isAdd) for (const s of srcs) if (isUrl(s)) fail(ctx, 'source can\'t be a URL for COPY');

  const workdir = ctx.state.config.config.WorkingDir || '/';
  const destIsDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const destAbs = path.posix.resolve(workdir, dest);

  const sourceFail = (err: unknown): never => {
    if (err instanceof SourceError) throw new BuildStepError(`${ins.keyword} failed: ${err.message}`, { location: ins.location, cause: err });
    throw err;
  };
  // the sources first (stats only): they are what the cache key hashes, unless an identity stands for them
  const { open, identity } = await sourceTree(ctx, ins).catch(sourceFail);
  const local: Array<{ tree: SourceTree; entry: SourceEntry }> = [];
  const urls = srcs.filter(isUrl);
  const resolveLocal = async () => {
    const tree = await open();
    try {
      for (const src of srcs.filter((x) => !isUrl(x))) for (const entry of resolveSources(tree, src)) local.push({ tree, entry });
    } catch (err) {
      sourceFail(err);
    }
    if (local.length + urls.length + inline.length > 1 && !destIsDir) {
      fail(ctx, `When using ${ins.keyword} with more than one source file, the destination must be a directory and end with a /`);
    }
    return tree;
  };
  const tree = identity === undefined ? await resolveLocal() : undefined;
  const sourceLines: string[] = [];
  const sourcesKey = identity ?? hashSources(tree!, local.map((l) => l.entry), ctx.stats, sourceLines);
  // the build checks of what it copies: what the step's last build of these sources found, if any, serves
  const linter = ctx.linter;
  const checks =
    linter && tree instanceof ContextTree
      ? async (last: StepRecord | undefined) => {
          const known = last?.files === sourcesKey && Array.isArray(last.notes?.keyFiles) ? (last.notes.keyFiles as KeyFile[]) : undefined;
          return { keyFiles: await copyHygiene(linter, ins, tree, local.map((l) => l.entry), sourceLines, known) };
        }
      : undefined;
  // URLs are fetched before the key is made: their content is part of it, as in BuildKit
  const downloads: Download[] = [];
  for (const url of urls) downloads.push(await download(url, path.join(ctx.stepDir, 'downloads'), checksum, ctx.options.signal).catch(sourceFail));
  const flags = [chown !== undefined ? `--chown=${chown}` : '', ins.chmod !== undefined ? `--chmod=${ins.chmod}` : ''].filter(Boolean);
  const shown = [ins.keyword, ...flags, ...srcs, ...ins.inline.map((d) => `<<${d.name}`), dest].join(' ');
  const material = {
    keyword: ins.keyword,
    srcs,
    dest: destAbs,
    destIsDir,
    chown,
    mode,
    link: ins.link,
    unpack: ins.unpack,
    downloads: downloads.map((d) => ({ name: d.name, digest: d.digest, mtime: d.mtime })),
    inline,
    sourcesKey,
    createdBy: shown, // the history text a hit reuses
  };
  await cachedStep(ctx, material, async () => {
    if (identity !== undefined) await resolveLocal();
    const imageView = await viewOf(ctx);
    const owner = ownership(ctx, chown, (p) => imageView.readFile(p));
    // --link: the layer is made on its own, independent of the image below: no symlink there is
    // followed and no directory copied up
    const view = ins.link ? new RootfsView([]) : imageView;
    const plan = new LayerPlan(view, Math.floor(Date.now() / 1000), ctx.epochSeconds);
    const ownerAndMode = { owner: owner ?? { uid: 0, gid: 0 }, mode };
    const newDirs = { ...ownerAndMode.owner, mode: 0o755 };

    /** Places one file-like source: into dest when dest is a directory, else as dest. */
    const target = (name: string) => {
      const resolvedDest = view.resolve(destAbs);
      const intoDir = destIsDir || resolvedDest.entry?.stat.isDirectory() === true;
      const dirPath = intoDir ? resolvedDest.path : view.resolve(path.posix.dirname(destAbs)).path;
      return { dir: plan.dir(dirPath, newDirs), name: intoDir ? name : path.posix.basename(destAbs) };
    };

    try {
      for (const got of downloads) {
        const t = target(got.name);
        plan.addFile(t.dir, t.name, got.file, got.size, { ...ownerAndMode.owner, mode: mode ?? 0o600, mtime: got.mtime });
      }
      for (const [n, { tree: t, entry }] of local.entries()) {
        // hard links stay links within one source (each wildcard match is one), as in BuildKit
        const opts = { ...ownerAndMode, source: n };
        const kind = isAdd && ins.unpack !== false && entry.stat.isFile() && t instanceof ContextTree ? await archiveKind(t.hostPath(entry.comps)) : undefined;
        if (kind) {
          const unpacked = await unpackArchive(t.hostPath(entry.comps), kind, path.join(ctx.stepDir, `unpack-${n}`));
          const dir = plan.dir(view.resolve(destAbs).path, newDirs);
          plan.addDirContents(dir, unpacked, [], { mode, replace: true, source: n }); // an archive's owners are kept, even with --chown
        } else if (entry.stat.isDirectory()) {
          const dir = plan.dir(view.resolve(destAbs).path, newDirs);
          plan.addDirContents(dir, t, entry.comps, opts);
        } else {
          const { dir, name } = target(entry.name);
          plan.addSource(dir, name, t, entry.comps, opts, entry.stat);
        }
      }
      for (const [i, doc] of inline.entries()) {
        const file = path.join(ctx.stepDir, `heredoc-${i}`);
        writeFileSync(file, doc.content);
        const t = target(doc.name);
        plan.addFile(t.dir, t.name, file, Buffer.byteLength(doc.content), { ...ownerAndMode.owner, mode: mode ?? 0o644, mtime: Math.floor(Date.now() / 1000) });
      }
    } catch (err) {
      sourceFail(err);
    }
    await commitLayerTar(ctx, (sink) => plan.write(sink), `${shown} # buildkit`);
  }, identity === undefined ? sourceLines : undefined, checks);
}

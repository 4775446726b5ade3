// What a step's handler gets, and the helpers that make and cache its layer.
import { mkdirSync, renameSync } from 'node:fs';
import type { Writable } from 'node:stream';
import path from 'node:path';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import type { Instruction } from '../dockerfile/instructions.js';
import { DockerfileError, ImageNotFoundError, RegistryError } from '../errors.js';
import { RootfsView, type LayerFiles } from '../fs/rootfs-view.js';
import { canMountImages } from '../overlay/erofs-support.js';
import { writeLayerTar, type LayerTarResult } from '../layer/diff.js';
import type { LayerMeta } from '../store/layers.js';
import type { Digest } from '../util/digest.js';
import type { Store } from '../store/store.js';
import { FileSink, type ByteSink } from '../util/sink.js';
import type { BaseImage, BaseImageSource } from './base-image.js';
import type { ImportedCache } from '../remote-cache/imported.js';
import type { BuiltStep } from '../remote-cache/export.js';
import { nearest } from '../util/suggest.js';
import { stepKey } from './cache-key.js';
import { explainMiss, redacted } from './cache-miss.js';
import type { CacheMiss } from '../progress/progress.js';
import type { StepRecord, StepRecords } from '../store/step-records.js';
import { envGet } from '../image/config.js';
import type { Linter } from '../check/linter.js';
import type { BuildCache } from '../store/build-cache.js';
import type { StatCache } from '../store/stat-cache.js';
import type { BuildOptions } from './options.js';
import type { StageState } from './stage-state.js';

/** Everything one instruction's handler may use. */
export interface StepContext {
  store: Store;
  state: StageState;
  ins: Instruction;
  escape: string;
  contextDir: string;
  ignore: IgnoreMatcher;
  options: BuildOptions;
  /** Host files bind-mounted over /etc/hosts, /etc/hostname, /etc/resolv.conf during RUN. */
  etcFiles: Record<string, string>;
  /** A fresh, empty directory for this step's work, inside the build's temp dir. */
  stepDir: string;
  /** Stages built so far, by name and by index, for COPY --from and RUN --mount from=. */
  stages: Map<string, StageState>;
  /** The names of every stage of the Dockerfile, to suggest one when --from names none. */
  stageNames: readonly string[];
  /** Images COPY --from can name when no stage has that name. */
  images: BaseImageSource;
  /** The build cache (store/build-cache.ts); `useCache` is false for --no-cache and filtered stages. */
  cache: BuildCache;
  useCache: boolean;
  /** Digests of context files, checked by stat. */
  stats: StatCache;
  /** --cache-from's records: consulted when the store's cache misses. */
  imported?: ImportedCache;
  /** With --cache-to: every step's key and result, as the cache export carries them. */
  built?: BuiltStep[];
  /** The build checks' warnings (the hygiene rules that read a step's files add theirs). */
  linter?: Linter;
  /** How a miss is told, and the step's build remembered for the next one's (cache-miss.ts). */
  explain?: StepExplain;
  /** Set by cachedStep before the step runs: the key its layer is recorded under. */
  cacheKey?: string;
  /** Set when the step's result came from the cache. */
  cached?: boolean;
  /** SOURCE_DATE_EPOCH in seconds, when set. */
  epochSeconds?: number;
  /** Where the step's command output goes (the progress display). */
  output: Writable;
  /** Lines about the step's own work (an image's layers being pulled). */
  status: (line: string) => void;
  /** A warning about the whole build, told once however many steps find it (as those told before any step runs). */
  warn: (line: string) => void;
}

/** The step's slot (cache-miss.ts stepSlot), where its builds are recorded, and where its miss is told. */
export interface StepExplain {
  records: StepRecords;
  slot: string;
  /** Why the cache is not asked, when it is not: '--no-cache', '--no-cache-filter build'. */
  noCache?: string;
  /** The stage's FROM, as written. */
  base: string;
  report: (miss: CacheMiss) => void;
}

/**
 * Runs a layer-making step through the build cache: the key is the parent layer stack plus what the
 * step depends on (`material`); a hit reuses the layer and its history entry without running
 * anything; a miss says why (against the step's last build) and runs `make`, whose commit records
 * the new layer under the key. `sources`: COPY's list of its sources (content-hash.ts), whose
 * digest the material holds as `sourcesKey`, kept to tell which files changed; `check`, the build
 * checks of them, given the step's last record (what they found there may serve again) and
 * returning what they found now, kept beside it (StepRecord.notes).
 */
export async function cachedStep(
  ctx: StepContext,
  material: { createdBy: string; [k: string]: unknown },
  make: () => Promise<void>,
  sources?: readonly string[],
  check?: (previous: StepRecord | undefined) => Promise<Record<string, unknown>>,
): Promise<void> {
  const key = stepKey(ctx.state.topChainId, { material, epoch: ctx.epochSeconds });
  const local = ctx.useCache ? ctx.cache.lookup(key) : undefined;
  const imported = ctx.useCache && !local ? ctx.imported?.lookup(key, ctx.state.layers) : undefined;
  // filed here too: a hit once its layer is fetched (an entry whose layer never comes is a miss)
  if (imported) ctx.cache.put(key, imported.layer, imported.createdBy);
  const hit = local ?? imported;
  const previous = ctx.explain?.records.read(ctx.explain.slot);
  const notes = await check?.(previous);
  const record = { ...stepRecord(ctx, key, material, sources), ...(notes ? { notes } : {}) };
  if (hit) {
    ctx.state.addLayer(hit.layer, hit.createdBy, ctx.ins.location);
    ctx.cached = true;
  } else {
    const explain = ctx.explain;
    if (explain) {
      const filesOf = (r: StepRecord | undefined, list: () => string | undefined) => () => (r?.files !== undefined ? list() : undefined);
      explain.report(
        explainMiss(previous, record, {
          noCache: explain.noCache,
          onBase: ctx.state.layers.length === ctx.state.baseDepth,
          base: explain.base,
          previousFiles: filesOf(previous, () => explain.records.files(explain.slot, previous!.files!)),
          currentFiles: filesOf(record, () => sources!.join('')),
        }),
      );
    }
    ctx.cacheKey = key;
    await make();
  }
  // the slot's record is now this build (a hit of an older variant of the step too)
  if (ctx.explain && (previous?.key !== key || (notes && !previous.notes))) ctx.explain.records.write(ctx.explain.slot, record, sources);
  ctx.built?.push({ key, layers: [...ctx.state.layers], createdBy: ctx.state.config.history.at(-1)?.created_by ?? material.createdBy });
}

/** What the step is built from, as the build cache's step records keep it. */
function stepRecord(ctx: StepContext, key: string, material: Record<string, unknown>, sources?: readonly string[]): StepRecord {
  const kept = redacted(
    material,
    ctx.state.args.map((a) => [a.key, envGet(ctx.state.env, a.key) ?? a.value ?? '']),
  );
  return {
    key,
    parent: ctx.state.topChainId ?? 'scratch',
    material: kept.material,
    args: kept.args,
    ...(ctx.epochSeconds !== undefined ? { epoch: ctx.epochSeconds } : {}),
    ...(sources && typeof material.sourcesKey === 'string' ? { files: material.sourcesKey } : {}),
  };
}

/**
 * The image a `--from` names when no stage has that name. When the store does not have it either,
 * the error suggests the stage whose name is nearest (a typo is likelier than a missing image).
 */
export async function imageNamed(ctx: StepContext, name: string, flag: string): Promise<BaseImage> {
  const hint = nearest(name, ctx.stageNames, true);
  try {
    // a name near a stage's is a typo, not looked up in a registry
    if (hint && !ctx.images.has(name)) throw new ImageNotFoundError(`no stage or image is named ${name}`);
    return await ctx.images.resolve(name, { status: ctx.status });
  } catch (err) {
    if (err instanceof RegistryError) fail(ctx, `${flag}=${name}: ${err.message}`, err);
    if (!(err instanceof ImageNotFoundError)) throw err;
    fail(ctx, hint ? `${flag}=${name}: no stage or image is named ${name} (did you mean ${hint}?)` : `${flag}=${name}: no stage is named ${name}, and ${err.message}`, err);
  }
}

export function fail(ctx: StepContext, message: string, cause?: unknown): never {
  throw new DockerfileError(message, { location: ctx.ins.location, cause });
}

/** A rootfs as layers make it (no mount needed), each layer extracted, or (with `images`) read from its EROFS image. */
async function viewOver(ctx: StepContext, layers: readonly LayerMeta[], images: boolean): Promise<RootfsView> {
  await ctx.imported?.materialize(layers);
  const files: LayerFiles[] = [];
  for (const l of layers) files.push(await ctx.store.layers.files(l.chainId, ctx.stepDir, images));
  return new RootfsView(files.reverse());
}

/** A rootfs as layers make it (no mount needed), read from their directories: extracts layers not extracted yet. */
export function viewOfLayers(ctx: StepContext, layers: readonly LayerMeta[]): Promise<RootfsView> {
  return viewOver(ctx, layers, false);
}

/**
 * The stage's rootfs as its layers make it, for lookups (and for the step's mount): layers not
 * extracted yet are read from their EROFS images where RUN can mount those (erofs-support.ts).
 */
export function viewOf(ctx: StepContext): Promise<RootfsView> {
  return viewOver(ctx, ctx.state.layers, !ctx.options.runtime && canMountImages());
}

/**
 * Records a finished layer (staged under the step dir, holding diff/ or nothing when a blob holds
 * it) in the store, adds it to the stage, and files it in the build cache under the step's key.
 */
function addStagedLayer(
  ctx: StepContext,
  staged: string,
  layer: { diffId: Digest; size: number; contentSize: number; blob?: Digest; clampMtime?: number; removes?: number },
  createdBy: string,
): LayerMeta {
  const meta = ctx.store.layers.commit(staged, {
    chainId: ctx.state.nextChainId(layer.diffId),
    parent: ctx.state.topChainId,
    created: new Date().toISOString(),
    ...layer,
  });
  ctx.state.addLayer(meta, createdBy, ctx.ins.location);
  if (ctx.cacheKey) ctx.cache.put(ctx.cacheKey, meta, createdBy);
  return meta;
}

/**
 * Turns a directory of changes (overlay form) into a layer of the stage: one pass over it writes
 * nothing but computes the diffID; then the directory itself moves into the store as the layer.
 */
export async function commitLayerDir(ctx: StepContext, diffDir: string, createdBy: string): Promise<LayerMeta> {
  const clampMtime = ctx.epochSeconds;
  const tar = await writeLayerTar(diffDir, undefined, { clampMtime });
  const staged = path.join(ctx.stepDir, 'layer');
  mkdirSync(staged);
  renameSync(diffDir, path.join(staged, 'diff'));
  return addStagedLayer(ctx, staged, { ...tar, ...(clampMtime !== undefined ? { clampMtime } : {}) }, createdBy);
}

/**
 * Makes a layer from a tar that `produce` writes: one pass hashes it (diffID) and stores it as the
 * layer's blob; the layer is extracted only when a later step needs its files.
 */
export async function commitLayerTar(ctx: StepContext, produce: (sink: ByteSink) => Promise<LayerTarResult>, createdBy: string): Promise<LayerMeta> {
  const blobFile = path.join(ctx.stepDir, 'layer.tar');
  const file = new FileSink(blobFile);
  let tar: LayerTarResult;
  try {
    tar = await produce(file);
  } finally {
    await file.close();
  }
  ctx.store.blobs.adopt(blobFile, tar.diffId);
  const staged = path.join(ctx.stepDir, 'layer');
  mkdirSync(staged);
  return addStagedLayer(ctx, staged, { ...tar, blob: tar.diffId }, createdBy);
}

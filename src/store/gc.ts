// prune, system df (the same plan) and fsck.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { parseConfig } from '../image/config.js';
import type { Manifest } from '../image/manifest.js';
import { isDigest, sha256, type Digest } from '../util/digest.js';
import { DigestSink } from '../util/sink.js';
import type { LayerMeta } from './layers.js';
import { BuildCache, type CacheRef } from './build-cache.js';
import { CacheMounts, type CacheMountRef } from './cache-mounts.js';
import { CompressedLayers } from './compressed-layers.js';
import { imageSize, readImage } from './stored-image.js';
import type { Store } from './store.js';
import { ImageIndex, namesByImage } from './images.js';
import { LayerSources } from './layer-sources.js';
import { StepRecords } from './step-records.js';

function allLayers(store: Store): LayerMeta[] {
  return readdirSync(store.layers.dir)
    .filter((h) => /^[0-9a-f]{64}$/.test(h))
    .flatMap((h) => (store.layers.has(`sha256:${h}`) ? [store.layers.meta(`sha256:${h}`)] : []));
}

/** A layer and every layer below it, of those `layers` holds. */
function withParents(layers: ReadonlyMap<string, LayerMeta>, chainId: Digest, into: Set<string>): void {
  for (let l = layers.get(chainId); l && !into.has(l.chainId); l = l.parent && layers.get(l.parent)) into.add(l.chainId);
}

const byChain = (layers: readonly LayerMeta[]) => new Map(layers.map((l) => [l.chainId as string, l]));

/** Layers the build cache refers to, with every layer below them. */
export function cacheKeptLayers(store: Store, inv: Pick<Inventory, 'entries' | 'layers'> = { entries: new BuildCache(store).entries(), layers: allLayers(store) }): Set<string> {
  const keep = new Set<string>();
  const layers = byChain(inv.layers);
  for (const e of inv.entries) withParents(layers, e.chainId, keep);
  return keep;
}

/** An image as prune plans over it and system df counts it. */
interface ImageRef {
  id: Digest;
  manifestDigest: Digest;
  tags: string[];
  added: string;
  size: number;
  /** Its top layer's chain ID (undefined: no layers); the layers' parent links give the rest. */
  top?: Digest;
  /** Read in full: its record lacked the top layer's chain ID. */
  readFully?: boolean;
}

/** Every image, from images.json alone where its record names its top layer, else read in full. */
function imageRefs(store: Store): ImageRef[] {
  const data = store.images.read();
  const names = namesByImage(data);
  return Object.values(data.images).map((r) => {
    const ref = { id: r.id, manifestDigest: r.manifest, tags: names.tags(r.id), added: r.added };
    if (r.top !== undefined && r.size !== undefined) return { ...ref, size: r.size, top: r.top || undefined };
    const img = readImage(store, r.id, data, names);
    return { ...ref, size: imageSize(img.layers), top: img.layers.at(-1)?.chainId, readFully: true };
  });
}

/** Writes into images.json what imageRefs had to read in full, so that the next prune need not (the caller holds the store lock). */
function recordTops(store: Store, refs: readonly ImageRef[]): void {
  if (!refs.some((r) => r.readFully)) return;
  const data = store.images.read();
  for (const r of refs) {
    const record = data.images[r.id];
    if (r.readFully && record) Object.assign(record, { size: r.size, top: r.top ?? '' });
  }
  store.images.write(data);
}

/** What prune plans over and system df counts, read from the store once. */
interface Inventory {
  /** The build cache the entries were listed from. */
  cache: BuildCache;
  images: ImageRef[];
  entries: CacheRef[];
  layers: LayerMeta[];
  mounts: CacheMountRef[];
  compressed: ReturnType<CompressedLayers['list']>;
}

/** `times`: the cache entries' last use too (prune's age and size filters). */
function inventory(store: Store, times = false): Inventory {
  const cache = new BuildCache(store);
  return {
    cache,
    images: imageRefs(store),
    entries: cache.entries({ times }),
    layers: allLayers(store),
    mounts: new CacheMounts(store).list(),
    compressed: new CompressedLayers(store).list(),
  };
}

/** What `system df` shows in one row: how many, how big, and what prune and prune --all would free of it. */
export interface UsageRow {
  count: number;
  size: number;
  /** Bytes a plain `prune` frees, exactly (the same plan prune carries out). */
  reclaimable: number;
  /** Bytes `prune --all` frees. */
  reclaimableAll: number;
}

export interface Usage {
  images: UsageRow;
  layers: UsageRow;
  /** Build cache entries; its size is the layers only the build cache keeps. */
  cache: UsageRow;
  /** gzip forms of layers (made for -o type=docker|oci). */
  compressed: UsageRow;
  /** RUN --mount=type=cache directories. */
  cacheMounts: UsageRow;
}

/** BuildKit's record types that `prune --filter type=` names: cache mounts, and everything else. */
export type RecordType = 'exec.cachemount' | 'regular';

export interface PruneOptions {
  /** Also the whole build cache, and images without a tag. */
  all?: boolean;
  /** Only cache entries and layers older than this many milliseconds. */
  olderThanMs?: number;
  /** Keep at most this many bytes of cache-only layers (oldest entries go first). */
  keepStorage?: number;
  /** Only records of these types (`--filter type=`); all by default. */
  types?: ReadonlySet<RecordType>;
}

export interface PruneReport {
  images: number;
  cacheEntries: number;
  layers: number;
  blobs: number;
  cacheMounts: number;
  reclaimed: number;
}

/** Which row of `system df` a freed byte belongs to. */
type Owner = 'images' | 'layers' | 'cache' | 'compressed' | 'cacheMounts';

/** Everything one prune removes, and the bytes that frees by owner: `prune` carries it out, `system df` shows it. */
interface PrunePlan {
  images: Digest[];
  cacheEntries: CacheRef[];
  layers: LayerMeta[];
  compressed: string[];
  blobs: Digest[];
  cacheMounts: CacheMountRef[];
  freed: Record<Owner, number>;
}

/**
 * Plans a prune without changing anything: cache mounts not used since the filter's time (as
 * BuildKit's prune removes exec.cachemount records), untagged images (with `all`), cache entries
 * whose layer is gone (with `all`: every entry old enough; with `keepStorage`: the oldest beyond
 * it), then every layer nothing left keeps, the gzip forms of those layers, and every blob nothing
 * left names.
 */
function planPrune(store: Store, inv: Inventory, opts: PruneOptions): PrunePlan {
  const now = Date.now();
  const oldEnough = (ms: number) => opts.olderThanMs === undefined || now - ms >= opts.olderThanMs;
  const plan: PrunePlan = { images: [], cacheEntries: [], layers: [], compressed: [], blobs: [], cacheMounts: [], freed: { images: 0, layers: 0, cache: 0, compressed: 0, cacheMounts: 0 } };
  if (!opts.types || opts.types.has('exec.cachemount')) {
    plan.cacheMounts = inv.mounts.filter((m) => oldEnough(m.lastUsedMs));
    plan.freed.cacheMounts = plan.cacheMounts.reduce((n, m) => n + m.size, 0);
  }
  if (opts.types && !opts.types.has('regular')) return plan;
  const allImages = inv.images;
  if (opts.all) plan.images = allImages.filter((i) => i.tags.length === 0 && oldEnough(Date.parse(i.added))).map((i) => i.id);
  const images = allImages.filter((i) => !plan.images.includes(i.id));
  const layersByChain = byChain(inv.layers);
  // an unreadable entry's chain ID is 'sha256:', which names no layer
  const stale = (e: CacheRef) => !layersByChain.has(e.chainId) || (opts.all === true && oldEnough(e.mtimeMs));
  let entries: CacheRef[] = [];
  for (const e of inv.entries) (stale(e) ? plan.cacheEntries : entries).push(e);
  const used = new Set<string>();
  for (const img of images) if (img.top) withParents(layersByChain, img.top, used);
  if (opts.keepStorage !== undefined) {
    const size = (c: Digest) => (used.has(c) ? 0 : (layersByChain.get(c)?.contentSize ?? 0));
    let kept = entries.reduce((n, e) => n + size(e.chainId), 0);
    const dropped = new Set<CacheRef>();
    for (const e of [...entries].sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      if (kept <= opts.keepStorage) break;
      if (!oldEnough(e.mtimeMs)) continue;
      kept -= size(e.chainId);
      dropped.add(e);
    }
    plan.cacheEntries.push(...dropped);
    entries = entries.filter((e) => !dropped.has(e));
  }
  // who held what before this prune: a freed layer is counted where it was used
  const imageLayers = new Set<string>();
  for (const img of allImages) if (img.top) withParents(layersByChain, img.top, imageLayers);
  const cacheLayers = cacheKeptLayers(store, inv);
  const keep = new Set<string>(used);
  for (const e of entries) withParents(layersByChain, e.chainId, keep);
  const keepBlobs = new Set<string>();
  for (const img of images) {
    keepBlobs.add(img.id);
    keepBlobs.add(img.manifestDigest);
  }
  const blobOwner = new Map<string, Owner>();
  for (const img of allImages) {
    blobOwner.set(img.id, 'images');
    blobOwner.set(img.manifestDigest, 'images');
  }
  const keptDiffs = new Set<string>();
  for (const layer of inv.layers) {
    const owner: Owner = imageLayers.has(layer.chainId) ? 'images' : cacheLayers.has(layer.chainId) ? 'cache' : 'layers';
    if (layer.blob) blobOwner.set(layer.blob, owner);
    if (keep.has(layer.chainId) || !oldEnough(layer.created ? Date.parse(layer.created) : 0)) {
      if (layer.blob) keepBlobs.add(layer.blob);
      keptDiffs.add(layer.diffId);
      continue;
    }
    plan.layers.push(layer);
    plan.freed[owner] += layer.contentSize;
  }
  // compressed forms of the layers that stay, stay; the others go with their blobs
  for (const { file, record } of inv.compressed) {
    if (record && isDigest(record.digest)) blobOwner.set(record.digest, 'compressed');
    if (record && keptDiffs.has(record.diffId)) keepBlobs.add(record.digest);
    else plan.compressed.push(file);
  }
  for (const hex of readdirSync(path.join(store.blobs.dir, 'sha256'))) {
    const d = `sha256:${hex}` as Digest;
    if (!isDigest(d) || keepBlobs.has(d)) continue;
    plan.blobs.push(d);
    plan.freed[blobOwner.get(d) ?? 'layers'] += statSync(store.blobs.path(d)).size;
  }
  return plan;
}

const total = (freed: Record<Owner, number>) => Object.values(freed).reduce((n, b) => n + b, 0);

/**
 * `system df`: what images, layers, the build cache and gzip forms hold, and what `prune` and
 * `prune --all` would free of each: the same plans those commands carry out, so right after a
 * prune, a plain prune's column is 0.
 */
export function usage(store: Store): Usage {
  const inv = inventory(store);
  const { images, layers, mounts } = inv;
  const used = new Set<string>();
  const layersByChain = byChain(layers);
  for (const img of images) if (img.top) withParents(layersByChain, img.top, used);
  const cached = cacheKeptLayers(store, inv);
  const records = inv.compressed.flatMap((r) => (r.record && store.blobs.has(r.record.digest) ? [r.record] : []));
  const plain = planPrune(store, inv, {}).freed;
  const all = planPrune(store, inv, { all: true }).freed;
  const row = (owner: Owner, count: number, size: number): UsageRow => ({ count, size, reclaimable: plain[owner], reclaimableAll: all[owner] });
  return {
    images: row('images', images.length, images.reduce((n, i) => n + i.size, 0)),
    layers: row('layers', layers.length, layers.reduce((n, l) => n + l.contentSize, 0)),
    cache: row('cache', inv.entries.length, layers.filter((l) => !used.has(l.chainId) && cached.has(l.chainId)).reduce((n, l) => n + l.contentSize, 0)),
    compressed: row('compressed', records.length, records.reduce((n, r) => n + r.size, 0)),
    cacheMounts: row('cacheMounts', mounts.length, mounts.reduce((n, m) => n + m.size, 0)),
  };
}

/**
 * Removes what planPrune plans (dangling layers, cache entries whose layer is gone, and with `all`
 * every cache entry and untagged image). Runs under the exclusive store GC lock: builds hold it
 * shared, so nothing a running build uses can go.
 */
export async function prune(store: Store, opts: PruneOptions = {}): Promise<PruneReport> {
  return store.collecting(() =>
    store.withLock(() => {
      const inv = inventory(store, opts.olderThanMs !== undefined || opts.keepStorage !== undefined);
      const plan = planPrune(store, inv, opts);
      recordTops(store, inv.images);
      if (plan.images.length > 0) {
        const data = store.images.read();
        ImageIndex.drop(data, plan.images);
        store.images.write(data);
      }
      for (const e of plan.cacheEntries) inv.cache.remove(e);
      if (opts.all && (!opts.types || opts.types.has('regular'))) new StepRecords(store.root).removeOlderThan(opts.olderThanMs === undefined ? undefined : Date.now() - opts.olderThanMs);
      const removed = new Set(plan.cacheEntries);
      inv.cache.writeIndex(inv.entries.filter((e) => !removed.has(e)));
      const trash = store.makeTemp('prune');
      const mounts = new CacheMounts(store);
      for (const m of plan.cacheMounts) mounts.remove(m, trash);
      for (const layer of plan.layers) store.layers.remove(layer.chainId, trash);
      const compressed = new CompressedLayers(store);
      for (const file of plan.compressed) compressed.remove(file);
      for (const d of plan.blobs) store.blobs.remove(d);
      if (plan.layers.length > 0) new LayerSources(store).removeExcept(new Set(allLayers(store).map((l) => l.diffId))); // where removed layers were pushed
      store.removeTemp(trash);
      return { images: plan.images.length, cacheEntries: plan.cacheEntries.length, layers: plan.layers.length, blobs: plan.blobs.length, cacheMounts: plan.cacheMounts.length, reclaimed: total(plan.freed) };
    }),
  );
}

/** `fsck`: every blob, layer and image checked against its digest; returns the problems found. */
export async function fsck(store: Store): Promise<string[]> {
  const problems: string[] = [];
  const blobDir = path.join(store.blobs.dir, 'sha256');
  for (const hex of readdirSync(blobDir)) {
    if (hex.startsWith('.')) continue;
    const d = `sha256:${hex}` as Digest;
    try {
      await store.blobs.copyTo(d, new DigestSink());
    } catch (err) {
      problems.push(err instanceof IntegrityError ? err.message : `blob ${d}: ${(err as Error).message}`);
    }
  }
  const work = store.makeTemp('fsck');
  for (const hex of readdirSync(store.layers.dir)) {
    const chainId = `sha256:${hex}` as Digest;
    if (!store.layers.has(chainId)) {
      problems.push(`layer ${chainId}: no meta.json (an unfinished layer)`);
      continue;
    }
    try {
      const meta = store.layers.meta(chainId);
      if (meta.blob && !store.blobs.has(meta.blob)) problems.push(`layer ${chainId}: its blob ${meta.blob} is missing`);
      const problem = await store.layers.verifyFiles(chainId, work);
      if (problem) problems.push(problem);
      if (meta.parent && !store.layers.has(meta.parent)) problems.push(`layer ${chainId}: its parent ${meta.parent} is missing`);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  store.removeTemp(work);
  const compressed = new CompressedLayers(store);
  for (const { file, record } of compressed.list()) {
    if (!record || !isDigest(record.digest)) problems.push(`${file}: unreadable`);
    else if (!store.blobs.has(record.digest)) problems.push(`compressed layer ${record.diffId}: its blob ${record.digest} is missing`);
    else await compressed.verify(record).catch((err: Error) => problems.push(err.message));
  }
  const data = store.images.read();
  for (const [tag, id] of Object.entries(data.tags)) if (!data.images[id]) problems.push(`tag ${tag} names image ${id}, which is not in the store`);
  for (const record of Object.values(data.images)) {
    try {
      const manifest = store.blobs.readJson<Manifest>(record.manifest);
      if (manifest.config.digest !== record.id) problems.push(`image ${record.id}: its manifest names config ${manifest.config.digest}`);
      const config = parseConfig(store.blobs.readBytes(record.id));
      if (sha256(store.blobs.readBytes(record.id)) !== record.id) problems.push(`image ${record.id}: config does not match its ID`);
      for (const c of chainIds(config.rootfs.diff_ids)) if (!store.layers.has(c)) problems.push(`image ${record.id}: layer ${c} is missing`);
    } catch (err) {
      problems.push(`image ${record.id}: ${(err as Error).message}`);
    }
  }
  return problems;
}

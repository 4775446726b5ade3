import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { parseConfig } from '../image/config.js';
import type { Manifest } from '../image/manifest.js';
import { isDigest, sha256, type Digest } from '../util/digest.js';
import { DigestSink } from '../util/sink.js';
import type { LayerMeta } from './layers.js';
import { CompressedLayers } from './compressed-layers.js';
import { listImages } from './stored-image.js';
import type { Store } from './store.js';

interface CacheRef {
  file: string;
  chainId: Digest;
  mtimeMs: number;
}

function cacheEntries(store: Store): CacheRef[] {
  const dir = path.join(store.root, 'cache');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      const file = path.join(dir, f);
      try {
        const { chainId } = JSON.parse(readFileSync(file, 'utf8')) as { chainId: Digest };
        return [{ file, chainId, mtimeMs: statSync(file).mtimeMs }];
      } catch {
        return [{ file, chainId: 'sha256:' as Digest, mtimeMs: 0 }];
      }
    });
}

function allLayers(store: Store): LayerMeta[] {
  return readdirSync(store.layers.dir)
    .filter((h) => /^[0-9a-f]{64}$/.test(h))
    .flatMap((h) => (store.layers.has(`sha256:${h}`) ? [store.layers.meta(`sha256:${h}`)] : []));
}

/** A layer and every layer below it. */
function withParents(store: Store, chainId: Digest, into: Set<string>): void {
  for (let c: Digest | undefined = chainId; c && !into.has(c) && store.layers.has(c); c = store.layers.meta(c).parent) into.add(c);
}

/** Layers the build cache refers to, with every layer below them. */
export function cacheKeptLayers(store: Store): Set<string> {
  const keep = new Set<string>();
  for (const e of cacheEntries(store)) if (isDigest(e.chainId)) withParents(store, e.chainId, keep);
  return keep;
}

export interface Usage {
  images: number;
  imagesSize: number;
  layers: number;
  layersSize: number;
  cacheEntries: number;
  /** Bytes of layers only the build cache keeps. */
  cacheSize: number;
  reclaimable: number;
  /** gzip forms of layers (made for -o type=docker|oci). */
  compressed: number;
  compressedSize: number;
  compressedReclaimable: number;
}

/** `system df`: what images, layers and the build cache hold, and what prune could free. */
export function usage(store: Store): Usage {
  const images = listImages(store);
  const used = new Set<string>();
  for (const img of images) for (const l of img.layers) used.add(l.chainId);
  const cached = new Set<string>();
  const entries = cacheEntries(store);
  for (const e of entries) withParents(store, e.chainId, cached);
  const layers = allLayers(store);
  const sizeOf = (l: LayerMeta) => l.contentSize;
  const cacheOnly = layers.filter((l) => !used.has(l.chainId) && cached.has(l.chainId));
  const dangling = layers.filter((l) => !used.has(l.chainId) && !cached.has(l.chainId));
  return {
    images: images.length,
    imagesSize: images.reduce((n, i) => n + i.layers.reduce((m, l) => m + l.contentSize, 0), 0),
    layers: layers.length,
    layersSize: layers.reduce((n, l) => n + sizeOf(l), 0),
    cacheEntries: entries.length,
    cacheSize: cacheOnly.reduce((n, l) => n + sizeOf(l), 0),
    reclaimable: [...cacheOnly, ...dangling].reduce((n, l) => n + sizeOf(l), 0),
    ...compressedUsage(store, new Set(layers.filter((l) => used.has(l.chainId)).map((l) => l.diffId))),
  };
}

/** gzip forms made for -o: those of layers no image uses go when prune removes the layers. */
function compressedUsage(store: Store, usedDiffs: Set<string>): Pick<Usage, 'compressed' | 'compressedSize' | 'compressedReclaimable'> {
  const records = new CompressedLayers(store).list().flatMap((r) => (r.record && store.blobs.has(r.record.digest) ? [r.record] : []));
  return {
    compressed: records.length,
    compressedSize: records.reduce((n, r) => n + r.size, 0),
    compressedReclaimable: records.filter((r) => !usedDiffs.has(r.diffId)).reduce((n, r) => n + r.size, 0),
  };
}

export interface PruneOptions {
  /** Also the whole build cache, and images without a tag. */
  all?: boolean;
  /** Only cache entries and layers older than this many milliseconds. */
  olderThanMs?: number;
  /** Keep at most this many bytes of cache-only layers (oldest entries go first). */
  keepStorage?: number;
}

export interface PruneReport {
  images: number;
  cacheEntries: number;
  layers: number;
  blobs: number;
  reclaimed: number;
}

/**
 * Removes dangling layers (no image and no cache entry uses them), cache entries whose layer is
 * gone, and with `all` every cache entry and untagged image. Runs under the exclusive store GC lock:
 * builds hold it shared, so nothing a running build uses can go.
 */
export async function prune(store: Store, opts: PruneOptions = {}): Promise<PruneReport> {
  return store.collecting(() =>
    store.withLock(() => {
      const report: PruneReport = { images: 0, cacheEntries: 0, layers: 0, blobs: 0, reclaimed: 0 };
      const now = Date.now();
      const oldEnough = (ms: number) => opts.olderThanMs === undefined || now - ms >= opts.olderThanMs;
      if (opts.all) {
        const data = store.images.read();
        const tagged = new Set(Object.values(data.tags));
        for (const id of Object.keys(data.images)) {
          if (!tagged.has(id as Digest) && oldEnough(Date.parse(data.images[id]!.added))) {
            delete data.images[id];
            report.images++;
          }
        }
        store.images.write(data);
      }
      let entries = cacheEntries(store);
      const drop = (e: CacheRef) => {
        rmSync(e.file, { force: true });
        report.cacheEntries++;
      };
      for (const e of entries) {
        if (!isDigest(e.chainId) || !store.layers.has(e.chainId) || (opts.all && oldEnough(e.mtimeMs))) drop(e);
      }
      entries = cacheEntries(store);
      const images = listImages(store);
      const used = new Set<string>();
      for (const img of images) for (const l of img.layers) used.add(l.chainId);
      if (opts.keepStorage !== undefined) {
        const size = (c: Digest) => (store.layers.has(c) && !used.has(c) ? store.layers.meta(c).contentSize : 0);
        let total = entries.reduce((n, e) => n + size(e.chainId), 0);
        for (const e of [...entries].sort((a, b) => a.mtimeMs - b.mtimeMs)) {
          if (total <= opts.keepStorage) break;
          if (!oldEnough(e.mtimeMs)) continue;
          total -= size(e.chainId);
          drop(e);
        }
        entries = cacheEntries(store);
      }
      const keep = new Set<string>(used);
      for (const e of entries) withParents(store, e.chainId, keep);
      const keepBlobs = new Set<string>();
      for (const img of images) {
        keepBlobs.add(img.id);
        keepBlobs.add(img.manifestDigest);
      }
      const trash = store.makeTemp('prune');
      const keptDiffs = new Set<string>();
      for (const layer of allLayers(store)) {
        if (keep.has(layer.chainId) || !oldEnough(layer.created ? Date.parse(layer.created) : 0)) {
          if (layer.blob) keepBlobs.add(layer.blob);
          keptDiffs.add(layer.diffId);
          continue;
        }
        store.layers.remove(layer.chainId, trash);
        report.layers++;
        report.reclaimed += layer.contentSize;
      }
      // compressed forms of the layers that stay, stay; the others go with their blobs
      const compressed = new CompressedLayers(store);
      for (const { file, record } of compressed.list()) {
        if (record && keptDiffs.has(record.diffId)) keepBlobs.add(record.digest);
        else compressed.remove(file);
      }
      for (const hex of readdirSync(path.join(store.blobs.dir, 'sha256'))) {
        const d = `sha256:${hex}` as Digest;
        if (!isDigest(d) || keepBlobs.has(d)) continue;
        report.reclaimed += statSync(store.blobs.path(d)).size;
        store.blobs.remove(d);
        report.blobs++;
      }
      store.removeTemp(trash);
      return report;
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
  for (const hex of readdirSync(store.layers.dir)) {
    const chainId = `sha256:${hex}` as Digest;
    if (!store.layers.has(chainId)) {
      problems.push(`layer ${chainId}: no meta.json (an unfinished layer)`);
      continue;
    }
    try {
      const meta = store.layers.meta(chainId);
      if (meta.blob && !store.blobs.has(meta.blob)) problems.push(`layer ${chainId}: its blob ${meta.blob} is missing`);
      const problem = await store.layers.verifyFiles(chainId);
      if (problem) problems.push(problem);
      if (meta.parent && !store.layers.has(meta.parent)) problems.push(`layer ${chainId}: its parent ${meta.parent} is missing`);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
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

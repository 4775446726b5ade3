// BuildKit's cache config (application/vnd.buildkit.cacheconfig.v0): layers as blob chains, records as step keys with results.
import { IntegrityError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';

export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.buildkit.cacheconfig.v0';
/** The image config key BuildKit's inline cache lives under (base64 of the records' JSON). */
export const INLINE_CACHE_KEY = 'moby.buildkit.cache.v0';
export const UNCOMPRESSED_ANNOTATION = 'containerd.io/uncompressed';

/** BuildKit's CacheLayer: a blob and the index of its parent (-1 for none). */
interface ConfigLayer {
  blob: Digest;
  parent?: number;
}

/** BuildKit's CacheRecord, with the step's history text tsbuild adds (BuildKit ignores unknown keys). */
interface ConfigRecord {
  digest: string;
  layers?: Array<{ layer: number; createdAt?: string }>;
  inputs?: unknown;
  createdBy?: string;
}

export interface CacheConfig {
  layers: ConfigLayer[];
  records: ConfigRecord[];
}

/** A layer blob as the cache manifest describes it. */
export interface CacheBlob {
  digest: Digest;
  size: number;
  mediaType: string;
  diffId: Digest;
}

/** A step the cache holds: its key, the layers of its result (bottom first), its history text. */
export interface CacheRecord {
  key: string;
  chain: CacheBlob[];
  createdBy: string;
  /** When the step first made its layer: the image's history keeps that time, so a hit gives the same image. */
  createdAt?: string;
}

/**
 * The cache config for records whose chains use `blobs`: each distinct chain prefix becomes a layer
 * entry pointing at its parent, records point at the entry of their chain's top. Sorted as BuildKit
 * sorts it, so the same records always give the same bytes.
 */
export function makeCacheConfig(records: readonly CacheRecord[]): CacheConfig {
  const layerIndex = new Map<string, number>();
  const layers: ConfigLayer[] = [];
  const chainKey = (chain: readonly CacheBlob[]) => chain.map((b) => b.digest).join(',');
  const add = (chain: readonly CacheBlob[]): number => {
    const k = chainKey(chain);
    const found = layerIndex.get(k);
    if (found !== undefined) return found;
    const parent = chain.length > 1 ? add(chain.slice(0, -1)) : -1;
    layers.push({ blob: chain.at(-1)!.digest, parent });
    layerIndex.set(k, layers.length - 1);
    return layers.length - 1;
  };
  const out: ConfigRecord[] = [];
  for (const r of [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (r.chain.length === 0 || out.some((o) => o.digest === `sha256:${r.key}`)) continue;
    out.push({ digest: `sha256:${r.key}`, layers: [{ layer: add(r.chain), ...(r.createdAt ? { createdAt: r.createdAt } : {}) }], createdBy: r.createdBy });
  }
  return { layers, records: out };
}

/**
 * Reads a cache config against the blobs its manifest lists: every record whose result is a chain
 * of known blobs. Anything malformed is refused whole (a cache is an optimisation: the caller warns
 * and builds without it).
 */
export function readCacheConfig(config: CacheConfig, blobs: ReadonlyMap<string, CacheBlob>): Map<string, CacheRecord> {
  if (!config || !Array.isArray(config.layers) || !Array.isArray(config.records)) throw new IntegrityError('cache config has no layers or records');
  const chains = new Map<number, CacheBlob[] | null>();
  const chainOf = (i: number, depth = 0): CacheBlob[] | null => {
    if (chains.has(i)) return chains.get(i)!;
    const l = config.layers[i];
    if (!l || depth > config.layers.length) return null;
    const blob = blobs.get(l.blob);
    const parent = l.parent ?? 0; // BuildKit omits a parent of 0
    const below = parent < 0 ? [] : chainOf(parent, depth + 1);
    const chain = blob && below ? [...below, blob] : null;
    chains.set(i, chain);
    return chain;
  };
  const out = new Map<string, CacheRecord>();
  for (const r of config.records) {
    if (typeof r?.digest !== 'string' || !isDigest(r.digest) || !Array.isArray(r.layers) || r.layers.length === 0) continue;
    const chain = chainOf(r.layers[0]!.layer);
    if (!chain) continue;
    const createdAt = r.layers[0]!.createdAt;
    out.set(r.digest.slice('sha256:'.length), {
      key: r.digest.slice('sha256:'.length),
      chain,
      createdBy: typeof r.createdBy === 'string' ? r.createdBy : '',
      ...(typeof createdAt === 'string' && !Number.isNaN(Date.parse(createdAt)) ? { createdAt } : {}),
    });
  }
  return out;
}

/**
 * BuildKit's inline cache: the records alone (no layers array), their results indexes into the
 * image's own layers, as base64 of their JSON under INLINE_CACHE_KEY in the image config.
 */
export function inlineCacheValue(steps: ReadonlyArray<{ key: string; top: number; createdBy: string; createdAt?: string }>): string | undefined {
  const seen = new Set<string>();
  const records: ConfigRecord[] = [];
  for (const s of [...steps].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (s.top < 0 || seen.has(s.key)) continue;
    seen.add(s.key);
    records.push({ digest: `sha256:${s.key}`, layers: [{ layer: s.top, ...(s.createdAt ? { createdAt: s.createdAt } : {}) }], createdBy: s.createdBy });
  }
  return records.length ? Buffer.from(JSON.stringify(records)).toString('base64') : undefined;
}

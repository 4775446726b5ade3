import { existsSync, mkdirSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { readJsonIfAny, writeFileAtomic } from '../store/atomic.js';
import type { LayerMeta } from '../store/layers.js';
import type { Store } from '../store/store.js';
import { hexOf, sha256, type Digest } from '../util/digest.js';

interface CacheEntry {
  chainId: Digest;
  createdBy: string;
}

/** A step's cache key: the layer stack it starts from, and what it depends on. */
export function stepKey(parent: Digest | undefined, material: unknown): string {
  return hexOf(sha256(JSON.stringify({ parent: parent ?? 'scratch', material })));
}

/**
 * The build cache, shared by every build on a store and kept across runs: cache/<key>.json names
 * the layer a step made. An entry whose layer is gone from the store is a miss.
 */
export class BuildCache {
  readonly dir: string;

  constructor(private readonly store: Store) {
    this.dir = path.join(store.root, 'cache');
    mkdirSync(this.dir, { recursive: true });
  }

  lookup(key: string): { layer: LayerMeta; createdBy: string } | undefined {
    const entry = readJsonIfAny<CacheEntry>(path.join(this.dir, `${key}.json`));
    if (!entry) return undefined;
    if (!this.store.layers.has(entry.chainId)) return undefined;
    const layer = this.store.layers.meta(entry.chainId);
    // a layer is usable if its files or its blob are there
    if (!existsSync(this.store.layers.diffDir(layer.chainId)) && !(layer.blob && this.store.blobs.has(layer.blob))) return undefined;
    const now = new Date();
    utimesSync(path.join(this.dir, `${key}.json`), now, now); // prune evicts the least recently used first
    return { layer, createdBy: entry.createdBy };
  }

  put(key: string, layer: LayerMeta, createdBy: string): void {
    writeFileAtomic(path.join(this.dir, `${key}.json`), JSON.stringify({ chainId: layer.chainId, createdBy } satisfies CacheEntry), 0o644, false);
  }
}

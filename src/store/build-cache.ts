// The build cache's records: a step's key to its layer.
import { existsSync, mkdirSync, rmSync, utimesSync } from 'node:fs';
import { dirFd } from '../fs/dir-fds.js';
import { scanDir } from '../fs/scan-dir.js';
import { native } from '../native/index.js';
import path from 'node:path';
import { isDigest, type Digest } from '../util/digest.js';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';

/** cache/<key>.json: the layer a step made, and its history text. */
interface CacheEntry {
  chainId: Digest;
  createdBy: string;
}

/** A build cache entry as prune and system df see it. */
export interface CacheRef {
  file: string;
  /** The layer it names ('sha256:' when the entry is unreadable). */
  chainId: Digest;
  /** When a build last used it (prune evicts the least recently used first). */
  mtimeMs: number;
}

/**
 * The build cache, shared by every build on a store and kept across runs: cache/<key>.json names
 * the layer a step made (the key is the builder's: cache-key.ts). An entry whose layer is gone from
 * the store is a miss. Entries are written without fsync: losing one costs a rebuild of the step.
 */
export class BuildCache {
  readonly dir: string;

  constructor(private readonly store: Store) {
    this.dir = path.join(store.root, 'cache');
  }

  lookup(key: string): { layer: LayerMeta; createdBy: string } | undefined {
    const entry = readJsonIfAny<CacheEntry>(path.join(this.dir, `${key}.json`));
    if (!entry || !isDigest(entry.chainId)) return undefined;
    if (!this.store.layers.has(entry.chainId)) return undefined;
    const layer = this.store.layers.meta(entry.chainId);
    // a layer is usable if its files or its blob are there
    if (!existsSync(this.store.layers.diffDir(layer.chainId)) && !(layer.blob && this.store.blobs.has(layer.blob))) return undefined;
    const now = new Date();
    utimesSync(path.join(this.dir, `${key}.json`), now, now); // prune evicts the least recently used first
    return { layer, createdBy: entry.createdBy };
  }

  put(key: string, layer: LayerMeta, createdBy: string): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(path.join(this.dir, `${key}.json`), JSON.stringify({ chainId: layer.chainId, createdBy } satisfies CacheEntry), 0o644, false);
  }

  /**
   * Every entry, readable or not: the directory listed with each entry's lstat in one call, and each
   * file read in one call (a store of CI runs holds tens of thousands).
   */
  entries(): CacheRef[] {
    if (!existsSync(this.dir)) return [];
    const { entries } = scanDir(this.dir);
    const refs: CacheRef[] = [];
    let buf = Buffer.alloc(4096);
    for (const [name, st] of entries) {
      if (!name.endsWith('.json') || name.startsWith('.') || !st.isFile()) continue;
      if (st.size > buf.length) buf = Buffer.alloc(st.size);
      let entry: CacheEntry | undefined;
      try {
        if (native().readFileInto(dirFd(this.dir), name, -1, -1, st.size, buf, 0)) entry = JSON.parse(buf.toString('utf8', 0, st.size)) as CacheEntry;
      } catch {
        entry = undefined; // unreadable: named 'sha256:' below, so prune removes it
      }
      refs.push({ file: path.join(this.dir, name), chainId: entry && isDigest(entry.chainId) ? entry.chainId : ('sha256:' as Digest), mtimeMs: st.mtimeMs });
    }
    return refs;
  }

  remove(ref: CacheRef): void {
    rmSync(ref.file, { force: true });
  }
}

// The build cache's records: a step's key to its layer.
import { appendFileSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
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
  /** The step's key: its file is cache/<key>.json. */
  key: string;
  /** The layer it names ('sha256:' when the entry is unreadable). */
  chainId: Digest;
  /** When a build last used it (prune evicts the least recently used first); NaN when not asked for. */
  mtimeMs: number;
  /** Its file's inode, as listed. */
  ino: number;
  /** Whether the index named it (else its file was read). */
  indexed: boolean;
}

/** cache/index.log: one line per entry written, `<key> <inode of its file> <chainId>`. */
const INDEX = 'index.log';

/**
 * The build cache, shared by every build on a store and kept across runs: cache/<key>.json names
 * the layer a step made (the key is the builder's: cache-key.ts). An entry whose layer is gone from
 * the store is a miss. Entries are written without fsync: losing one costs a rebuild of the step.
 *
 * prune needs every entry's layer, and a CI store holds tens of thousands of entries: reading each
 * file costs seconds. So each write also appends a line to cache/index.log (one write with
 * O_APPEND: whole, whatever else appends), naming the layer and the inode of the file written. A
 * listing trusts a line only for the file with that inode (a file rewritten since, or written by a
 * command that died before its line, is read instead), and prune, which holds the store to itself,
 * rewrites the index without the lines of removed entries.
 */
export class BuildCache {
  readonly dir: string;
  /** Lines the index held when entries() last read it. */
  private indexLines = 0;

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
    const ino = writeFileAtomic(path.join(this.dir, `${key}.json`), JSON.stringify({ chainId: layer.chainId, createdBy } satisfies CacheEntry), 0o644, false);
    appendFileSync(path.join(this.dir, INDEX), `${key} ${ino} ${layer.chainId}\n`);
  }

  /** The index's text, and where the last line of each key starts after the key (its inode, a space, its chain ID). */
  private readIndex(): { text: string; at: Map<string, number> } {
    const at = new Map<string, number>();
    let text: string;
    try {
      text = readFileSync(path.join(this.dir, INDEX), 'latin1');
    } catch {
      return { text: '', at };
    }
    let lines = 0;
    for (let start = 0; start < text.length; lines++) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const space = text.indexOf(' ', start);
      if (space > start && space < end) at.set(text.slice(start, space), space + 1);
      start = end + 1;
    }
    this.indexLines = lines;
    return { text, at };
  }

  /**
   * Every entry, readable or not, each with its layer: from the index where it names the file as it
   * is, else read. `times`: each entry's last use too (an lstat of each; prune's filters need it),
   * else mtimeMs is NaN.
   */
  entries(opts: { times?: boolean } = {}): CacheRef[] {
    if (!existsSync(this.dir)) return [];
    const index = this.readIndex();
    const text = index.text;
    const refs: CacheRef[] = [];
    // chain IDs seen to be digests, one string each: entries share a few layers
    const chains = new Map<string, Digest>();
    const known = (id: string | undefined): Digest => {
      if (id === undefined) return 'sha256:' as Digest; // unreadable: prune removes it
      let digest = chains.get(id);
      if (digest === undefined) {
        if (!isDigest(id)) return 'sha256:' as Digest;
        chains.set(id, (digest = id));
      }
      return digest;
    };
    /** The chain ID the index gives the file with this inode, where its line names that inode. */
    const indexed = (key: string, ino: number): Digest | undefined => {
      const from = index.at.get(key);
      if (from === undefined) return undefined;
      const space = text.indexOf(' ', from);
      if (space < 0 || Number(text.slice(from, space)) !== ino) return undefined;
      let end = text.indexOf('\n', space);
      if (end < 0) end = text.length;
      return known(text.slice(space + 1, end));
    };
    let buf = Buffer.alloc(4096);
    const add = (name: string, ino: number, size: number, mtimeMs: number) => {
      if (!name.endsWith('.json') || name.startsWith('.')) return;
      const key = name.slice(0, -'.json'.length);
      let chainId = indexed(key, ino);
      const fromIndex = chainId !== undefined;
      if (!fromIndex) {
        let read: string | undefined;
        try {
          const bytes = size >= 0 ? size : lstatSync(`${this.dir}/${name}`).size;
          if (bytes > buf.length) buf = Buffer.alloc(bytes);
          if (native().readFileInto(dirFd(this.dir), name, -1, -1, bytes, buf, 0)) read = (JSON.parse(buf.toString('utf8', 0, bytes)) as CacheEntry).chainId;
        } catch {
          read = undefined;
        }
        chainId = known(typeof read === 'string' ? read : undefined);
      }
      refs.push({ key, chainId: chainId!, mtimeMs, ino, indexed: fromIndex });
    };
    if (opts.times) {
      for (const [name, st] of scanDir(this.dir).entries) if (st.isFile()) add(name, st.ino, st.size, st.mtimeMs);
    } else {
      const { names, inos } = native().listNames(this.dir);
      let i = 0;
      for (let at = 0; at < names.length; i++) {
        const end = names.indexOf('\0', at);
        add(names.slice(at, end), inos[i]!, -1, NaN);
        at = end + 1;
      }
    }
    return refs;
  }

  /**
   * Rewrites the index as the lines of these entries, as entries() listed them (prune calls it with
   * those it keeps, holding the store): removed entries' lines go, and entries written before the
   * index was (or whose line was lost) get one.
   */
  writeIndex(live: readonly CacheRef[]): void {
    // nothing to add or drop: left as it is
    if (!existsSync(this.dir) || (live.every((r) => r.indexed) && this.indexLines === live.length)) return;
    const lines = live.filter((r) => r.chainId !== 'sha256:').map((r) => `${r.key} ${r.ino} ${r.chainId}\n`);
    writeFileAtomic(path.join(this.dir, INDEX), lines.join(''), 0o644, false);
  }

  remove(ref: CacheRef): void {
    rmSync(path.join(this.dir, `${ref.key}.json`), { force: true });
  }
}

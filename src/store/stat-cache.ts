// Context file digests remembered by stat, so an unchanged rebuild reads no content.
import { closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import type { EntryStat } from '../fs/scan-dir.js';
import { native } from '../native/index.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';

/** [path relative to the context, size, mtimeMs, ctimeMs, inode, device, sha256 hex] */
type Entry = [string, number, number, number, number, number, string];

const FORMAT = 2;

/** Where file contents are read to be hashed: one buffer for every file (hashing copies nothing). */
let scratch: Buffer | undefined;

/**
 * A file changed this recently when it was hashed is not remembered (git's "racily clean" rule):
 * the kernel stamps times in ticks (a jiffy, at most 10 ms), and a same-size rewrite within the
 * tick of the stat would otherwise look unchanged forever.
 */
const RACY_MS = 50;

/**
 * File digests keyed by path and checked against (size, mtime, ctime, inode, device): an unchanged file
 * costs a stat, not a read. One file per build context under the store's stat-cache/, read only
 * when a build first hashes a file from that context; losing it only costs re-reading.
 */
export class StatCache {
  private entries: Map<string, Entry> | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    private readonly contextDir: string,
  ) {}

  static dir(root: string): string {
    return path.join(root, 'stat-cache');
  }

  static forContext(root: string, contextDir: string): StatCache {
    const dir = path.resolve(contextDir);
    const name = createHash('sha256').update(dir).digest('hex').slice(0, 32);
    return new StatCache(path.join(StatCache.dir(root), `${name}.json`), dir);
  }

  private load(): Map<string, Entry> {
    if (this.entries) return this.entries;
    this.entries = new Map();
    const data = readJsonIfAny<{ format: number; context: string; entries: Entry[] }>(this.file);
    if (data?.format === FORMAT && data.context === this.contextDir) for (const e of data.entries) this.entries.set(e[0], e);
    return this.entries;
  }

  /** The sha256 of a regular file's content, read (by `read`, when it gives it) only when the file changed since last time. */
  digest(file: string, st: EntryStat, read?: () => Buffer | undefined): string {
    const prefix = `${this.contextDir}/`;
    const key = file.startsWith(prefix) && !file.includes('/./') && !file.includes('/../') ? file.slice(prefix.length) : path.relative(this.contextDir, file);
    const entries = this.load();
    const e = entries.get(key);
    if (e && e[1] === st.size && e[2] === st.mtimeMs && e[3] === st.ctimeMs && e[4] === st.ino && e[5] === st.dev) return e[6];
    const hashedAt = Date.now();
    const hash = createHash('sha256');
    scratch ??= Buffer.allocUnsafe(1 << 20);
    const content = read?.();
    if (content) hash.update(content); // read by the caller (who keeps it for the layer)
    else if (st.size <= scratch.length && native().readFileInto(-1, file, -1, -1, st.size, scratch, 0)) {
      hash.update(scratch.subarray(0, st.size)); // a small file, read in one call
    } else {
      const fd = openSync(file, 'r');
      try {
        for (let n = readSync(fd, scratch); n > 0; n = readSync(fd, scratch)) hash.update(scratch.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    }
    const digest = hash.digest('hex');
    if (Math.max(st.mtimeMs, st.ctimeMs) < hashedAt - RACY_MS) {
      entries.set(key, [key, st.size, st.mtimeMs, st.ctimeMs, st.ino, st.dev, digest]);
      this.dirty = true;
    } else if (entries.delete(key)) this.dirty = true;
    return digest;
  }

  save(): void {
    if (!this.dirty || !this.entries) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const data = { format: FORMAT, context: this.contextDir, entries: [...this.entries.values()] };
    writeFileAtomic(this.file, JSON.stringify(data), 0o644, false);
    this.dirty = false;
  }
}

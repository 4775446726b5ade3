import { closeSync, openSync, readFileSync, readSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';

interface Entry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  digest: string;
}

/**
 * File digests keyed by path and checked against (size, mtime, ctime, inode): an unchanged file
 * costs a stat, not a read. Kept in the store as stat-cache.json; losing it only costs re-reading.
 */
export class StatCache {
  private readonly entries: Map<string, Entry>;
  private dirty = false;

  constructor(private readonly file: string) {
    let loaded: Record<string, Entry> = {};
    try {
      loaded = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Entry>;
    } catch {
      loaded = {};
    }
    this.entries = new Map(Object.entries(loaded));
  }

  static forStore(root: string): StatCache {
    return new StatCache(path.join(root, 'stat-cache.json'));
  }

  /** The sha256 of a regular file's content, read only when the file changed since last time. */
  digest(file: string, st: Stats): string {
    const e = this.entries.get(file);
    if (e && e.size === st.size && e.mtimeMs === st.mtimeMs && e.ctimeMs === st.ctimeMs && e.ino === st.ino) return e.digest;
    const hash = createHash('sha256');
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    const digest = hash.digest('hex');
    this.entries.set(file, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest });
    this.dirty = true;
    return digest;
  }

  save(): void {
    if (this.dirty) writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.entries)), 0o644, false);
    this.dirty = false;
  }
}

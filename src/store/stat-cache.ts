// Context file digests remembered by stat, so an unchanged rebuild reads no content.
import { closeSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import type { EntryStat } from '../fs/scan-dir.js';
import { native } from '../native/index.js';
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { createSha256, sha256Hex } from '../util/digest.js';

/**
 * The file: a header line, then a line per file, `<key>\t<size>\t<mtimeMs>\t<ctimeMs>\t<ino>\t<dev>\t<sha256>`
 * (the key: its path relative to the context). A context of 100,000 files makes 14 MB of it, which
 * JSON took 150 ms to parse into arrays: lines are split into key and the rest, and the rest is
 * compared as text with the stat's own line.
 */
const HEADER = 'tsbuild stat cache 3';

/** Where file contents are read to be hashed: one buffer for every file (hashing copies nothing). */
let scratch: Buffer | undefined;

/**
 * A file changed this recently when it was hashed is not remembered (git's "racily clean" rule):
 * the kernel stamps times in ticks (a jiffy, at most 10 ms), and a same-size rewrite within the
 * tick of the stat would otherwise look unchanged forever.
 */
const RACY_MS = 50;

/** What a file's line holds after its key, up to its digest: the stat it was hashed at. */
const statText = (st: EntryStat) => `${st.size}\t${st.mtimeMs}\t${st.ctimeMs}\t${st.ino}\t${st.dev}\t`;

/**
 * File digests keyed by path and checked against (size, mtime, ctime, inode, device): an unchanged file
 * costs a stat, not a read. One file per build context under the store's stat-cache/, read only
 * when a build first hashes a file from that context; losing it only costs re-reading.
 *
 * Lines are saved in the order the build asked for them, and a build that asks in the same order
 * (an unchanged context, the same Dockerfile) is answered by reading the file from front to back,
 * comparing each line with the stat as text: no map of 100,000 keys is built, nor any key hashed
 * (that took as long as the stat walk). The first answer out of that order reads every line into a
 * map; a changed file keeps the order.
 */
export class StatCache {
  private text: string | undefined;
  /** Where the next line is, while answers come in the file's order (-1: no longer). */
  private cursor = 0;
  /** Every line, key -> the rest (its stat text, then its digest): made at the first answer out of order. */
  private entries: Map<string, string> | undefined;
  /**
   * This build's answers in the order asked, saved first: the offset of a line of the file answered
   * in order, a line's key and rest, or a key to forget (hashed too soon after it changed).
   */
  private readonly answers: Array<number | [string, string | undefined]> = [];
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
    const name = sha256Hex(dir).slice(0, 32);
    return new StatCache(path.join(StatCache.dir(root), `${name}.tsv`), dir);
  }

  private loadText(): string {
    if (this.text !== undefined) return this.text;
    try {
      this.text = readFileSync(this.file, 'utf8');
    } catch {
      this.text = '';
    }
    const first = this.text.indexOf('\n');
    if (first < 0 || this.text.slice(0, first) !== `${HEADER}\t${this.contextDir}`) this.text = '';
    this.cursor = first + 1;
    return this.text;
  }

  /** The line at `at` as [key, rest, where the next line starts]. */
  private lineAt(at: number): [string, string, number] | undefined {
    const text = this.loadText();
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const tab = text.indexOf('\t', at);
    return tab > at && tab < end ? [text.slice(at, tab), text.slice(tab + 1, end), end + 1] : undefined;
  }

  private map(): Map<string, string> {
    if (this.entries) return this.entries;
    this.entries = new Map();
    const text = this.loadText();
    for (let at = text.indexOf('\n') + 1; at > 0 && at < text.length; ) {
      const line = this.lineAt(at);
      if (line) this.entries.set(line[0], line[1]);
      const end = text.indexOf('\n', at);
      at = end < 0 ? text.length : end + 1;
    }
    return this.entries;
  }

  /** The key of a host file: its path relative to the context (for files outside it, as path.relative gives). */
  keyOf(file: string): string {
    return path.relative(this.contextDir, file);
  }

  /** The digest remembered for this key at this stat, if any. */
  private known(key: string, stat: string): string | undefined {
    const text = this.loadText();
    if (this.cursor >= 0 && this.cursor < text.length) {
      const line = `${key}\t${stat}`;
      const at = this.cursor + line.length;
      if (text.startsWith(line, this.cursor) && (text.charCodeAt(at + 64) === 10 || at + 64 === text.length)) {
        this.answers.push(this.cursor);
        this.cursor = at + 65;
        return text.slice(at, at + 64);
      }
      this.dirty = true;
      if (text.startsWith(`${key}\t`, this.cursor)) {
        this.cursor = this.lineAt(this.cursor)![2]; // the same file, changed: still in order
        return undefined;
      }
      this.cursor = -1; // out of order from here: every line into the map
    }
    this.dirty = true;
    const rest = this.map().get(key);
    if (rest === undefined || rest.length !== stat.length + 64 || !rest.startsWith(stat)) return undefined;
    this.answers.push([key, rest]);
    return rest.slice(stat.length);
  }

  /** The digest remembered for a file at this stat, if any. */
  lookup(key: string, st: EntryStat): string | undefined {
    return this.known(key, statText(st));
  }

  /** Remembers a file's digest, computed from content read after `hashedAt` (unless it changed too recently before). */
  remember(key: string, st: EntryStat, digest: string, hashedAt: number): void {
    this.dirty = true;
    // (a key with a tab or a newline would break its line: such a file is not remembered)
    const keep = Math.max(st.mtimeMs, st.ctimeMs) < hashedAt - RACY_MS && !/[\t\n]/.test(key);
    this.answers.push([key, keep ? statText(st) + digest : undefined]);
  }

  /**
   * The sha256 of a regular file's content, read (by `read`, when it gives it, else from `file()`)
   * only when the file changed since last time.
   */
  digest(key: string, st: EntryStat, file: () => string, read?: () => Buffer | undefined): string {
    const known = this.lookup(key, st);
    if (known !== undefined) return known;
    const hashedAt = Date.now();
    const hash = createSha256();
    scratch ??= Buffer.allocUnsafe(1 << 20);
    const content = read?.();
    if (content) hash.update(content); // read by the caller (who keeps it for the layer)
    else if (st.size <= scratch.length && native().readFileInto(-1, file(), -1, -1, st.size, scratch, 0)) {
      hash.update(scratch.subarray(0, st.size)); // a small file, read in one call
    } else {
      const fd = openSync(file(), 'r');
      try {
        for (let n = readSync(fd, scratch); n > 0; n = readSync(fd, scratch)) hash.update(scratch.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    }
    const digest = hash.digest('hex');
    this.remember(key, st, digest, hashedAt);
    return digest;
  }

  /**
   * Writes this build's answers, in the order asked, then the other lines the file had; unless every
   * answer was a line of the file, in its order.
   */
  save(): void {
    if (!this.dirty) return;
    const lines = new Map<string, string | undefined>();
    for (const a of this.answers) {
      const [key, rest] = typeof a === 'number' ? this.lineAt(a)! : a;
      lines.set(key, rest);
    }
    for (const [key, rest] of this.map()) if (!lines.has(key)) lines.set(key, rest);
    const out = [`${HEADER}\t${this.contextDir}\n`];
    for (const [key, rest] of lines) if (rest !== undefined) out.push(`${key}\t${rest}\n`);
    const text = out.join('');
    this.dirty = false;
    if (text === this.text) return; // asked out of order, but the same lines (two COPYs of one context)
    mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, text, 0o644, false);
  }
}

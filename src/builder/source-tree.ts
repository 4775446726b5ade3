// Where COPY reads: the build context (after .dockerignore) or another stage's or image's rootfs.
import { readlinkSync, realpathSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import path from 'node:path';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { globToRegex } from '../dockerfile/dockerignore.js';
import { components, resolveComponents } from '../fs/resolve.js';
import type { RootfsView } from '../fs/rootfs-view.js';
import { lstatOrNull } from '../fs/lstat.js';
import { scanDirs, type DirScan, type EntryStat } from '../fs/scan-dir.js';
import { dirFd } from '../fs/dir-fds.js';
import { ADDON_THREADS, native } from '../native/index.js';

import { xattrsOf } from '../layer/diff.js';

export class SourceError extends Error {}

/**
 * Where COPY and ADD read from: the build context (a host directory filtered by .dockerignore),
 * or the rootfs of another stage or image (a RootfsView). Paths are component lists from the root.
 */
export interface SourceTree {
  /** For messages: "the build context (/src)", "stage builder", "image busybox". */
  readonly name: string;
  lstat(comps: readonly string[]): EntryStat | null;
  readdir(comps: readonly string[]): string[];
  /** A directory's entries in name order, with their lstat (a walk's one look at each). */
  list(comps: readonly string[]): ReadonlyArray<readonly [string, EntryStat]>;
  readlink(comps: readonly string[]): string;
  /** The host file holding an entry's content. */
  hostPath(comps: readonly string[]): string;
  excluded(rel: string): boolean;
  /** Whether an exception pattern may keep something below an excluded directory. */
  mayIncludeUnder(rel: string): boolean;
  /**
   * An entry's xattrs, which COPY keeps (security.capability, user.*), as BuildKit's copier does
   * from another stage or image. Not asked of the context.
   */
  xattrs?(comps: readonly string[]): Map<string, Buffer> | undefined;
  /**
   * A small file's content, read beneath the tree's root and checked against its lstat, and kept
   * (within a budget) until takeContent: hashing reads a file once, and the layer takes those bytes.
   */
  readContent?(comps: readonly string[], st: EntryStat): Buffer | undefined;
  takeContent?(comps: readonly string[], rel?: string): Buffer | undefined;
  /**
   * The sha256 (hex) of each of these regular files of one directory, read on threads, beneath the
   * tree's root and checked against their lstat (undefined for a file that changed); small files'
   * contents are kept as readContent keeps them.
   */
  hashFiles?(dir: readonly string[], files: ReadonlyArray<readonly [string, EntryStat]>): Array<string | undefined>;
  /** Context sources may not leave the context; other trees behave like a chroot. */
  readonly strict: boolean;
  /** A directory every file read must resolve inside (the context), checked when it is opened. */
  readonly confinedTo?: string;
}


/** Files up to this size are kept after hashing, up to KEPT_CONTENT bytes in all (each counted with its buffer's own cost). */
const SMALL_FILE = 64 * 1024;
const KEPT_CONTENT = 64 << 20;
const BUFFER_COST = 256;

/**
 * Directory scans a ContextTree keeps: enough for every directory on the path a walk is at, and
 * never more entries in all than this (memory stays bounded, whatever the context holds).
 */
const KEPT_SCANS = 256;
const KEPT_ENTRIES = 200_000;
/** Directories scanned at once: as many as the addon's threads. */
const PREFETCH = ADDON_THREADS;

/** The error for an errno a batch read of the addon gave for a file (hashFiles, tarFiles). */
export function cannotRead(errno: number, file: string): Error {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`${code}: cannot read ${file}`), { code, errno });
}

/** A file to read beneath a context directory: where, what it must still be, and whether to keep its bytes. */
interface BeneathFile {
  rel: string;
  dev: number;
  ino: number;
  size: number;
  keep: boolean;
}

/**
 * Hashes files beneath `root` (through no symlink, each still the file planned), on threads in the
 * addon, keeping their bytes where `keep`. Undefined for a file that changed or went; an error the
 * kernel gives is thrown, naming the file under `shown`.
 */
function hashBeneath(root: string, shown: string, files: readonly BeneathFile[]): Array<{ digest: string; content?: Buffer } | undefined> {
  const n = files.length;
  const expect = new Float64Array(3 * n);
  const offsets = new Float64Array(n).fill(-1);
  let kept = 0;
  for (const [i, f] of files.entries()) {
    expect.set([f.dev, f.ino, f.size], 3 * i);
    if (f.keep) {
      offsets[i] = kept;
      kept += f.size;
    }
  }
  const contents = Buffer.allocUnsafe(kept);
  const digests = Buffer.allocUnsafe(32 * n);
  const ok = new Uint8Array(n);
  const errs = new Int32Array(n);
  native().hashFiles(dirFd(root), files.map((f) => `${f.rel}\0`).join(''), expect, offsets, contents, digests, ok, errs, PREFETCH);
  return files.map((f, i) => {
    if (ok[i] === 2) throw cannotRead(errs[i]!, path.join(shown, f.rel));
    if (ok[i] !== 1) return undefined;
    const digest = digests.toString('hex', 32 * i, 32 * i + 32);
    return offsets[i]! >= 0 ? { digest, content: contents.subarray(offsets[i]!, offsets[i]! + f.size) } : { digest };
  });
}

export class ContextTree implements SourceTree {
  readonly name: string;
  readonly strict = true;
  readonly confinedTo: string;
  /** Recent directory scans by relative path, least recently used first. */
  private readonly scans = new Map<string, DirScan>();
  private kept = 0;
  /** Scans' entries in name order, made once each (gone with the scan). */
  private readonly sorted = new WeakMap<DirScan, Array<[string, EntryStat]>>();
  /** Scans' subdirectory names in order, to find the ones a walk lists next (gone with the scan). */
  private readonly subdirs = new WeakMap<DirScan, string[]>();
  /** Small files' contents read for hashing, by relative path, until the layer takes them. */
  private readonly contents = new Map<string, Buffer>();
  private contentBytes = 0;

  readonly dir: string;

  constructor(
    dir: string,
    private readonly ignore: IgnoreMatcher,
  ) {
    this.dir = path.resolve(dir); // normalized: hostPath joins names to it as they are
    this.name = `the build context (${dir})`;
    this.confinedTo = realpathSync(dir);
  }

  /**
   * A directory's entries with their lstat, in one call: a walk lists a directory and then looks at
   * each entry, and hashing and planning walk the same tree. A directory swapped for a symlink
   * after it was planned must not list the host: its real path must stay inside the context.
   */
  private scan(comps: readonly string[]): DirScan {
    const key = comps.join('/');
    const known = this.scans.get(key);
    if (known) {
      this.scans.delete(key);
      this.scans.set(key, known);
      return known;
    }
    // the next few directories a walk will list (this one's later siblings) are scanned with it, on
    // a thread each: lstat is the kernel's work, and most of the walk's time
    const parentKey = comps.slice(0, -1).join('/');
    const siblings = comps.length > 0 && this.scans.has(parentKey) ? this.laterSubdirs(parentKey, comps.at(-1)!) : [];
    const keys = [key, ...siblings.map((n) => (parentKey === '' ? n : `${parentKey}/${n}`))];
    const found = scanDirs(keys.map((k) => (k === '' ? this.dir : path.join(this.dir, k))));
    for (const [i, k] of keys.entries()) {
      const scan = found[i]!;
      if (scan instanceof Error) {
        if (i === 0) throw scan;
        continue; // a sibling's error is told when the walk gets to it
      }
      if (scan.real !== this.confinedTo && !scan.real.startsWith(`${this.confinedTo}/`)) {
        if (i === 0) throw new SourceError(`${this.hostPath(comps)} left the build context while it was being read`);
        continue;
      }
      this.scans.set(k, scan);
      this.kept += scan.entries.size;
    }
    for (const [oldest, scan] of this.scans) {
      if (this.scans.size <= keys.length || (this.scans.size <= KEPT_SCANS && this.kept <= KEPT_ENTRIES)) break;
      this.scans.delete(oldest);
      this.kept -= scan.entries.size;
    }
    // the one asked for is the most recent
    const mine = this.scans.get(key)!;
    this.scans.delete(key);
    this.scans.set(key, mine);
    return mine;
  }

  /** Up to PREFETCH - 1 subdirectories of a scanned directory that sort after `name` and are not scanned yet. */
  private laterSubdirs(parentKey: string, name: string): string[] {
    if (PREFETCH === 1) return [];
    const parent = this.scans.get(parentKey)!;
    let sorted = this.subdirs.get(parent);
    if (!sorted) this.subdirs.set(parent, (sorted = this.sortedEntries(parent).flatMap(([n, st]) => (st.isDirectory() ? [n] : []))));
    let lo = 0;
    for (let hi = sorted.length; lo < hi; ) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! <= name) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < sorted.length && out.length < PREFETCH - 1; i++) {
      if (!this.scans.has(parentKey === '' ? sorted[i]! : `${parentKey}/${sorted[i]}`)) out.push(sorted[i]!);
    }
    return out;
  }

  lstat(comps: readonly string[]): EntryStat | null {
    if (comps.length === 0) return lstatOrNull(this.dir);
    try {
      const parent = this.scan(comps.slice(0, -1));
      return parent.entries.get(comps.at(-1)!) ?? null;
    } catch (err) {
      if (err instanceof SourceError) throw err;
      return null; // no such directory (or not one): nothing there
    }
  }
  /** A scan's entries in name order, sorted once per scan: hashing and then planning list every directory. */
  private sortedEntries(scan: DirScan): ReadonlyArray<readonly [string, EntryStat]> {
    let sorted = this.sorted.get(scan);
    if (!sorted) this.sorted.set(scan, (sorted = [...scan.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
    return sorted;
  }

  readdir(comps: readonly string[]) {
    return this.list(comps).map(([name]) => name);
  }
  list(comps: readonly string[]): ReadonlyArray<readonly [string, EntryStat]> {
    return this.sortedEntries(this.scan(comps));
  }
  readContent(comps: readonly string[], st: EntryStat): Buffer | undefined {
    if (!st.isFile() || st.size > SMALL_FILE) return undefined;
    const rel = comps.join('/');
    const buf = Buffer.allocUnsafe(st.size);
    // beneath the context through no symlink, and still the file lstat saw, or not at all
    if (!native().readFileInto(dirFd(this.confinedTo), rel, st.dev, st.ino, st.size, buf, 0)) return undefined;
    if (this.roomFor(rel, buf.length)) this.keep(rel, buf);
    return buf;
  }
  /** Whether a file's content may be kept for the layer, with `pending` bytes already promised. */
  private roomFor(rel: string, size: number, pending = 0): boolean {
    return !this.contents.has(rel) && this.contentBytes + pending + size + BUFFER_COST <= KEPT_CONTENT;
  }
  private keep(rel: string, content: Buffer): void {
    this.contentBytes += content.length + BUFFER_COST;
    this.contents.set(rel, content);
  }
  hashFiles(dir: readonly string[], files: ReadonlyArray<readonly [string, EntryStat]>): Array<string | undefined> {
    const prefix = dir.length > 0 ? `${dir.join('/')}/` : '';
    let pending = 0;
    const batch = files.map(([name, st], i) => {
      const keep = st.size <= SMALL_FILE && this.roomFor(prefix + name, st.size, pending + BUFFER_COST * i);
      if (keep) pending += st.size;
      return { rel: prefix + name, dev: st.dev, ino: st.ino, size: st.size, keep };
    });
    return hashBeneath(this.confinedTo, this.dir, batch).map((r, i) => {
      if (r?.content) this.keep(batch[i]!.rel, r.content);
      return r?.digest;
    });
  }
  takeContent(comps: readonly string[], rel = comps.join('/')): Buffer | undefined {
    const buf = this.contents.get(rel);
    if (buf) this.contents.delete(rel);
    return buf;
  }
  readlink(comps: readonly string[]) {
    return readlinkSync(this.hostPath(comps));
  }
  hostPath(comps: readonly string[]) {
    // components are single names, never . nor ..: joined as they are (path.join per file was slow)
    if (comps.length === 0) return this.dir;
    return `${this.dir.endsWith('/') ? this.dir : `${this.dir}/`}${comps.join('/')}`;
  }
  excluded(rel: string) {
    return this.ignore.excludes(rel);
  }
  mayIncludeUnder(rel: string) {
    return this.ignore.mayIncludeUnder(rel);
  }
}

export class RootfsTree implements SourceTree {
  readonly strict = false;

  constructor(
    readonly name: string,
    private readonly view: RootfsView,
  ) {}

  lstat(comps: readonly string[]) {
    return this.view.entryAt(comps)?.stat ?? null;
  }
  readdir(comps: readonly string[]) {
    return this.view.list(comps).sort();
  }
  list(comps: readonly string[]): ReadonlyArray<readonly [string, EntryStat]> {
    return this.readdir(comps).flatMap((name) => {
      const st = this.lstat([...comps, name]);
      return st ? [[name, st] as [string, EntryStat]] : [];
    });
  }
  readlink(comps: readonly string[]) {
    return readlinkSync(this.hostPath(comps));
  }
  hostPath(comps: readonly string[]) {
    const e = this.view.entryAt(comps);
    if (!e) throw new SourceError(`/${comps.join('/')} vanished from ${this.name}`);
    return e.hostPath;
  }
  xattrs(comps: readonly string[]) {
    return xattrsOf(this.hostPath(comps));
  }
  excluded() {
    return false;
  }
  mayIncludeUnder() {
    return false;
  }
}

/**
 * Whether the context transfer sends an entry: it is not excluded, or it is a directory an
 * exception pattern reaches into (sent with only what is kept inside).
 */
export function isSent(tree: SourceTree, rel: string, st: EntryStat): boolean {
  return !tree.excluded(rel) || (st.isDirectory() && tree.mayIncludeUnder(rel));
}

export interface SourceEntry {
  /** The name the source was asked for (before symlinks were followed): the name it is copied as. */
  name: string;
  /** Components from the tree's root, symlinks resolved. */
  comps: string[];
  /** The same as a relative path (for .dockerignore and messages). */
  rel: string;
  stat: EntryStat;
}

const GLOB = /[*?[]/;

/**
 * Resolves a COPY/ADD source in a tree: cleaned, symlinks followed inside the tree (leaving the
 * build context is an error), wildcards matched per path component as Go's filepath.Match does.
 * A missing source, or one .dockerignore excludes, is an error; a wildcard may match nothing.
 */
export function resolveSources(tree: SourceTree, src: string): SourceEntry[] {
  const normal = path.posix.normalize(src);
  if (tree.strict && (normal === '..' || normal.startsWith('../'))) {
    throw new SourceError(`forbidden path outside the build context: ${src}`);
  }
  const rel = components(normal).filter((c) => c !== '..').join('/');
  if (GLOB.test(rel)) return globSources(tree, rel);
  const refuse = (why: 'dotdot' | 'absolute', target?: string): never => {
    throw new SourceError(`forbidden path outside the build context: ${src}${why === 'absolute' ? ` is a symlink to ${target}` : ''}`);
  };
  const comps = resolveComponents(rel, {
    readlink: (c) => (tree.lstat(c)?.isSymbolicLink() ? tree.readlink(c) : undefined),
    onEscape: tree.strict ? refuse : undefined,
  });
  const resolvedRel = comps.join('/');
  const stat = tree.lstat(comps);
  if (stat ? !isSent(tree, resolvedRel, stat) : tree.excluded(resolvedRel)) throw new SourceError(`"${src}" not found: excluded by .dockerignore`);
  if (!stat) throw new SourceError(`"${src}" not found in ${tree.name}`);
  return [{ name: path.posix.basename(rel) || path.posix.basename(resolvedRel), comps, rel: resolvedRel, stat }];
}

function globSources(tree: SourceTree, pattern: string): SourceEntry[] {
  const parts = pattern.split('/');
  const out: SourceEntry[] = [];
  const walk = (dir: string[], i: number) => {
    const st = tree.lstat(dir);
    if (!st?.isDirectory()) return;
    const re = globToRegex(parts[i]!);
    for (const name of tree.readdir(dir)) {
      if (!re.test(name)) continue;
      const comps = [...dir, name];
      const rel = comps.join('/');
      if (tree.excluded(rel)) continue;
      const stat = tree.lstat(comps);
      if (!stat) continue;
      if (i === parts.length - 1) out.push({ name, comps, rel, stat });
      else if (stat.isDirectory()) walk(comps, i + 1);
    }
  };
  walk([], 0);
  return out;
}

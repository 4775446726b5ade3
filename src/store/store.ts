import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from './blobs.js';
import { ImageIndex } from './images.js';
import { LayerStore } from './layers.js';
import { tempSiblingOwner } from './atomic.js';
import { processAlive, withFileLock } from './lock.js';

/** The default store root: /var/lib/tsbuild for root, $XDG_DATA_HOME/tsbuild otherwise. */
export function defaultRoot(): string {
  if (process.env.TSBUILD_ROOT) return process.env.TSBUILD_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'tsbuild');
}

/**
 * The local store:
 *   blobs/sha256/<hex>        configs, manifests, imported layer tars
 *   layers/<chain hex>/       diff/ (overlay form) + meta.json (+ extracted.json: the digest of diff/ when it came from a blob)
 *   l/<short>                 short links to diff dirs
 *   images.json               tags and images
 *   cache/<key>.json          build cache: a step's cache key → its layer and config change
 *   stat-cache/<context>.json context files' digests by (size, mtime, ctime, inode)
 *   compressed/<diff hex>.gzip-<level>.json  a layer's gzip blob (for -o), made once
 *   tmp/<owner>-<pid>-<rand>/ per-command work space, removed on exit and, after a crash, on the next start
 */
export class Store {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly images: ImageIndex;
  readonly tmpDir: string;
  private readonly temps = new Set<string>();

  private constructor(readonly root: string) {
    this.blobs = new BlobStore(path.join(root, 'blobs'));
    this.layers = new LayerStore(path.join(root, 'layers'), path.join(root, 'l'), this.blobs);
    this.images = new ImageIndex(path.join(root, 'images.json'));
    this.tmpDir = path.join(root, 'tmp');
  }

  static open(root = defaultRoot()): Store {
    const store = new Store(path.resolve(root));
    for (const d of ['blobs/sha256', 'layers', 'l', 'tmp', 'locks']) mkdirSync(path.join(store.root, d), { recursive: true });
    store.removeStaleTemps();
    return store;
  }

  /** Work space that disappears when this process ends (see `cleanup`), or on the next start after a crash. */
  makeTemp(purpose: string): string {
    const dir = path.join(this.tmpDir, `${purpose}-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    this.temps.add(dir);
    return dir;
  }

  removeTemp(dir: string): void {
    try {
      rmdirSync(dir); // most step dirs are empty by now: one syscall instead of a recursive walk
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
    this.temps.delete(dir);
  }

  /** Removes this process's temp dirs. Safe to call more than once. */
  cleanup(): void {
    for (const dir of [...this.temps]) this.removeTemp(dir);
  }

  /**
   * What a killed command left behind: temp dirs, and temp siblings of atomic writes (blobs, links,
   * images.json), whose owner process is gone. Nothing else can be half-written: every file reaches
   * its real name by rename.
   */
  private removeStaleTemps(): void {
    const dead = (pid: number | undefined) => pid !== undefined && Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
    let crashed = false;
    for (const name of readdirSync(this.tmpDir)) {
      if (!dead(Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1]))) continue;
      rmSync(path.join(this.tmpDir, name), { recursive: true, force: true });
      crashed = true;
    }
    // images.json and the other root files can be written by any command; blobs and links only by
    // builds, loads and imports, which hold a temp dir while they do: only when one was left behind
    // are the (large) blob and link directories worth listing
    const dirs = crashed ? [this.root, ...['blobs/sha256', 'l', 'cache', 'stat-cache', 'compressed'].map((d) => path.join(this.root, d))] : [this.root];
    for (const dir of dirs) {
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        if (dead(tempSiblingOwner(name))) rmSync(path.join(dir, name), { force: true });
      }
    }
  }

  /** Serialises changes to images.json between processes. */
  withLock<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'store.lock'), fn);
  }

  /**
   * Builds and loads hold this shared while they run; prune and rmi take it exclusively, so they never
   * remove a layer a running build is using (and wait for running builds to end).
   */
  inUse<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'gc.lock'), fn, 24 * 3600_000, true);
  }

  collecting<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'gc.lock'), fn, 24 * 3600_000);
  }
}

// RUN --mount=type=cache directories.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { hexOf, sha256 } from '../util/digest.js';
import type { Store } from './store.js';

/** A cache mount's directory, as prune and system df see it. */
export interface CacheMountRef {
  dir: string;
  /** Bytes of its files (a directory walk). */
  size: number;
  /** When a step last mounted it. */
  lastUsedMs: number;
}

/**
 * RUN --mount=type=cache directories: cache-mounts/<sha256 of the id>/, made on first use with the
 * mount's mode and owner and kept across builds (BuildKit's exec.cachemount records), plus
 * cache-mounts/<hex>.lock, held while a sharing=locked step runs. prune removes them as BuildKit's
 * `docker builder prune` does; a build using one holds the store in use, so never under it.
 */
export class CacheMounts {
  readonly dir: string;

  constructor(store: Store) {
    this.dir = path.join(store.root, 'cache-mounts');
  }

  /** The directory for a cache id, made (with the mount's mode and owner) the first time; its use is recorded. */
  open(id: string, attrs: { mode?: number; uid?: number; gid?: number }): { dir: string; lockFile: string } {
    const dir = path.join(this.dir, hexOf(sha256(id)));
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, attrs.mode ?? 0o755);
      chownSync(dir, attrs.uid ?? 0, attrs.gid ?? 0);
    }
    const now = new Date();
    utimesSync(dir, now, now);
    return { dir, lockFile: `${dir}.lock` };
  }

  list(): CacheMountRef[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((name) => /^[0-9a-f]{64}$/.test(name))
      .map((name) => {
        const dir = path.join(this.dir, name);
        return { dir, size: duBytes(dir), lastUsedMs: lstatSync(dir).mtimeMs }; // open() sets it at every use
      });
  }

  /** Removes a cache mount (moved aside into `trashDir` first, so a crash never leaves half of one under its name). */
  remove(ref: CacheMountRef, trashDir: string): void {
    mkdirSync(trashDir, { recursive: true });
    const aside = path.join(trashDir, path.basename(ref.dir));
    renameSync(ref.dir, aside);
    rmSync(`${ref.dir}.lock`, { force: true });
    rmSync(aside, { recursive: true, force: true });
  }
}

/** Bytes of the files below a directory (symlinks not followed). */
function duBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += duBytes(p);
    else if (e.isFile()) total += lstatSync(p).size;
  }
  return total;
}

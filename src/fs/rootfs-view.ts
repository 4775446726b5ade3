// The rootfs a stack of layer directories makes, read without mounting it.
import { readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { isWhiteoutDevice, overlayOpaqueXattr } from './whiteout.js';
import { resolveComponents } from './resolve.js';
import { lstatOrNull } from './lstat.js';

/** An entry as the merged rootfs shows it: the host path in the topmost layer that holds it. */
export interface ViewEntry {
  /** Absolute path inside the rootfs, symlinks resolved (except a final one when not followed). */
  path: string;
  hostPath: string;
  stat: Stats;
}


/**
 * A read-only view of the rootfs that a stack of layer directories (overlay form, top first) makes,
 * without mounting it: lookups apply whiteouts and opaque directories as overlayfs would, and
 * resolve symlinks inside the rootfs. COPY uses it to find where its destination really is, RUN to
 * read /etc/passwd.
 */
export class RootfsView {
  /** dirLayers' answers by directory path: the layers never change under a view. */
  private readonly contributing = new Map<string, readonly string[]>();

  constructor(private readonly layers: readonly string[]) {}

  /** The layers (top first) that contribute to directory `dir` (components from the root). */
  dirLayers(dir: readonly string[]): readonly string[] {
    if (dir.length === 0) return this.layers;
    const key = dir.join('/');
    const known = this.contributing.get(key);
    if (known) return known;
    const next: string[] = [];
    for (const layer of this.dirLayers(dir.slice(0, -1))) {
      const hostPath = path.join(layer, key);
      const st = lstatOrNull(hostPath);
      if (!st) continue;
      if (!st.isDirectory()) break; // a file or whiteout hides this name in the layers below
      next.push(layer);
      if (native().getXattr(hostPath, overlayOpaqueXattr())?.toString() === 'y') break;
    }
    this.contributing.set(key, next);
    return next;
  }

  /** The entry at exactly these components (no symlink resolution), or null. */
  entryAt(comps: readonly string[]): { hostPath: string; stat: Stats } | null {
    if (comps.length === 0) {
      for (const layer of this.layers) {
        const st = lstatOrNull(layer);
        if (st) return { hostPath: layer, stat: st };
      }
      return null;
    }
    for (const layer of this.dirLayers(comps.slice(0, -1))) {
      const hostPath = path.join(layer, ...comps);
      const st = lstatOrNull(hostPath);
      if (!st) continue;
      if (isWhiteoutDevice(st)) return null;
      return { hostPath, stat: st };
    }
    return null;
  }

  /**
   * Resolves `p` (absolute in the rootfs) following symlinks inside the rootfs. Returns the resolved
   * path and the entry there, or the resolved path and null when it does not exist.
   */
  resolve(p: string, followFinal = true): { path: string; entry: ViewEntry | null } {
    const resolved = resolveComponents(p, {
      readlink: (comps) => {
        const found = this.entryAt(comps);
        return found?.stat.isSymbolicLink() ? readlinkSync(found.hostPath) : undefined;
      },
    }, followFinal);
    const full = `/${resolved.join('/')}`;
    const entry = this.entryAt(resolved);
    return { path: full, entry: entry ? { path: full, ...entry } : null };
  }

  /** Names in a directory (components, already resolved) as the merged rootfs lists them. */
  list(dir: readonly string[]): string[] {
    const names = new Set<string>();
    for (const layer of this.dirLayers(dir)) {
      for (const name of readdirSync(path.join(layer, ...dir))) names.add(name);
    }
    return [...names].filter((n) => this.entryAt([...dir, n]) !== null);
  }

  /** A file's content through the view, or undefined when absent or not a regular file. */
  readFile(p: string): string | undefined {
    const { entry } = this.resolve(p);
    if (!entry || !entry.stat.isFile()) return undefined;
    return readFileSync(entry.hostPath, 'utf8');
  }
}

// The rootfs a stack of layers makes, read without mounting it.
import { readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { native } from '../native/index.js';
import type { ErofsImage } from './erofs-reader.js';
import { isWhiteoutDevice, overlayOpaqueXattr } from './whiteout.js';
import { resolveComponents } from './resolve.js';
import { lstatOrNull } from './lstat.js';

/** One layer's files (overlay form), as a view reads them: a directory, or an EROFS image. */
export interface LayerFiles {
  lstat(comps: readonly string[]): Stats | null;
  /** Whether the directory is opaque (hides the layers below). */
  opaque(comps: readonly string[]): boolean;
  readdir(comps: readonly string[]): string[];
  /** A regular file's content or a symlink's target. */
  content(comps: readonly string[]): Buffer;
  /** The entry's path on the host: only a directory's entries have one. */
  hostPath(comps: readonly string[]): string;
}

/** A layer extracted into a directory (or a RUN step's diff). */
export class DirLayer implements LayerFiles {
  constructor(readonly dir: string) {}

  private at(comps: readonly string[]): string {
    return comps.length === 0 ? this.dir : path.join(this.dir, ...comps);
  }
  lstat(comps: readonly string[]) {
    return lstatOrNull(this.at(comps));
  }
  opaque(comps: readonly string[]) {
    return native().getXattr(this.at(comps), overlayOpaqueXattr())?.toString() === 'y';
  }
  readdir(comps: readonly string[]) {
    return readdirSync(this.at(comps));
  }
  content(comps: readonly string[]) {
    const p = this.at(comps);
    return lstatOrNull(p)?.isSymbolicLink() ? Buffer.from(readlinkSync(p)) : readFileSync(p);
  }
  hostPath(comps: readonly string[]) {
    return this.at(comps);
  }
}

/** A layer kept as an EROFS image (mounted by a RUN step, never extracted): read through the image. */
export class ErofsLayer implements LayerFiles {
  constructor(private readonly image: ErofsImage) {}

  lstat(comps: readonly string[]) {
    return this.image.lstat(comps);
  }
  opaque(comps: readonly string[]) {
    return this.image.xattr(comps, 'trusted.overlay.opaque')?.toString() === 'y';
  }
  readdir(comps: readonly string[]) {
    return this.image.readdir(comps);
  }
  content(comps: readonly string[]) {
    return this.image.content(comps);
  }
  hostPath(comps: readonly string[]): string {
    throw new IntegrityError(`/${comps.join('/')} is in a layer kept as an image (${this.image.file}), not extracted`);
  }
}

/** An entry as the merged rootfs shows it, in the topmost layer that holds it. */
export interface ViewEntry {
  /** Absolute path inside the rootfs, symlinks resolved (except a final one when not followed). */
  path: string;
  /** Its path on the host (a directory layer's entries only: throws for an image's). */
  readonly hostPath: string;
  stat: Stats;
}

interface Found {
  layer: LayerFiles;
  comps: readonly string[];
  stat: Stats;
  readonly hostPath: string;
}

function found(layer: LayerFiles, comps: readonly string[], stat: Stats): Found {
  return {
    layer,
    comps,
    stat,
    get hostPath() {
      return layer.hostPath(comps);
    },
  };
}

/**
 * A read-only view of the rootfs that a stack of layers (overlay form, top first) makes, without
 * mounting it: lookups apply whiteouts and opaque directories as overlayfs would, and resolve
 * symlinks inside the rootfs. COPY uses it to find where its destination really is, RUN to read
 * /etc/passwd. Layers are directories (paths) or LayerFiles.
 */
export class RootfsView {
  /** dirLayers' answers by directory path: the layers never change under a view. */
  private readonly contributing = new Map<string, readonly LayerFiles[]>();
  private readonly layers: readonly LayerFiles[];

  constructor(layers: ReadonlyArray<string | LayerFiles>) {
    this.layers = layers.map((l) => (typeof l === 'string' ? new DirLayer(l) : l));
  }

  /** Symlinks as the view shows them, for resolving paths inside the rootfs. */
  private readonly symlinks = {
    readlink: (comps: readonly string[]) => {
      const at = this.entryAt(comps);
      return at?.stat.isSymbolicLink() ? at.layer.content(at.comps).toString() : undefined;
    },
  };

  /** The layers (top first) that contribute to directory `dir` (components from the root). */
  dirLayers(dir: readonly string[]): readonly LayerFiles[] {
    if (dir.length === 0) return this.layers;
    const key = dir.join('/');
    const known = this.contributing.get(key);
    if (known) return known;
    const next: LayerFiles[] = [];
    for (const layer of this.dirLayers(dir.slice(0, -1))) {
      const st = layer.lstat(dir);
      if (!st) continue;
      if (!st.isDirectory()) break; // a file or whiteout hides this name in the layers below
      next.push(layer);
      if (layer.opaque(dir)) break;
    }
    this.contributing.set(key, next);
    return next;
  }

  /** The entry at exactly these components (no symlink resolution), or null. */
  entryAt(comps: readonly string[]): Found | null {
    const layers = comps.length === 0 ? this.layers : this.dirLayers(comps.slice(0, -1));
    for (const layer of layers) {
      const st = layer.lstat(comps);
      if (!st) continue;
      if (comps.length > 0 && isWhiteoutDevice(st)) return null;
      return found(layer, comps, st);
    }
    return null;
  }

  /**
   * Resolves `p` (absolute in the rootfs) following symlinks inside the rootfs. Returns the resolved
   * path and the entry there, or the resolved path and null when it does not exist.
   */
  resolve(p: string, followFinal = true): { path: string; entry: ViewEntry | null } {
    const resolved = resolveComponents(p, this.symlinks, followFinal);
    const full = `/${resolved.join('/')}`;
    const at = this.entryAt(resolved);
    if (!at) return { path: full, entry: null };
    return {
      path: full,
      entry: {
        path: full,
        stat: at.stat,
        get hostPath() {
          return at.hostPath;
        },
      },
    };
  }

  /** Names in a directory (components, already resolved) as the merged rootfs lists them. */
  list(dir: readonly string[]): string[] {
    const names = new Set<string>();
    for (const layer of this.dirLayers(dir)) {
      for (const name of layer.readdir(dir)) names.add(name);
    }
    return [...names].filter((n) => this.entryAt([...dir, n]) !== null);
  }

  /** A file's content through the view, or undefined when absent or not a regular file. */
  readFile(p: string): string | undefined {
    const at = this.entryAt(resolveComponents(p, this.symlinks));
    if (!at || !at.stat.isFile()) return undefined;
    return at.layer.content(at.comps).toString('utf8');
  }
}

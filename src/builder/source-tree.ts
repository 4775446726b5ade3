// Where COPY reads: the build context (after .dockerignore) or another stage's or image's rootfs.
import { readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { globToRegex } from '../dockerfile/dockerignore.js';
import { components, resolveComponents } from '../fs/resolve.js';
import type { RootfsView } from '../fs/rootfs-view.js';
import { lstatOrNull } from '../fs/lstat.js';

import { xattrsOf } from '../layer/diff.js';

export class SourceError extends Error {}

/**
 * Where COPY and ADD read from: the build context (a host directory filtered by .dockerignore),
 * or the rootfs of another stage or image (a RootfsView). Paths are component lists from the root.
 */
export interface SourceTree {
  /** For messages: "the build context (/src)", "stage builder", "image busybox". */
  readonly name: string;
  lstat(comps: readonly string[]): Stats | null;
  readdir(comps: readonly string[]): string[];
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
  /** Context sources may not leave the context; other trees behave like a chroot. */
  readonly strict: boolean;
  /** A directory every file read must resolve inside (the context), checked when it is opened. */
  readonly confinedTo?: string;
}


export class ContextTree implements SourceTree {
  readonly name: string;
  readonly strict = true;
  readonly confinedTo: string;

  constructor(
    readonly dir: string,
    private readonly ignore: IgnoreMatcher,
  ) {
    this.name = `the build context (${dir})`;
    this.confinedTo = realpathSync(dir);
  }

  lstat(comps: readonly string[]) {
    return lstatOrNull(this.hostPath(comps));
  }
  readdir(comps: readonly string[]) {
    const dir = this.hostPath(comps);
    // a directory swapped for a symlink after it was planned must not list the host
    const real = realpathSync(dir);
    if (real !== this.confinedTo && !real.startsWith(`${this.confinedTo}/`)) throw new SourceError(`${dir} left the build context while it was being read`);
    return readdirSync(dir).sort();
  }
  readlink(comps: readonly string[]) {
    return readlinkSync(this.hostPath(comps));
  }
  hostPath(comps: readonly string[]) {
    return path.join(this.dir, ...comps);
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
export function isSent(tree: SourceTree, rel: string, st: Stats): boolean {
  return !tree.excluded(rel) || (st.isDirectory() && tree.mayIncludeUnder(rel));
}

export interface SourceEntry {
  /** The name the source was asked for (before symlinks were followed): the name it is copied as. */
  name: string;
  /** Components from the tree's root, symlinks resolved. */
  comps: string[];
  /** The same as a relative path (for .dockerignore and messages). */
  rel: string;
  stat: Stats;
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

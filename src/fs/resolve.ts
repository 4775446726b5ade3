// Path resolution inside a root, as a chroot would resolve it.
import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors.js';

const MAX_SYMLINKS = 40;

/** Splits a path into its components, dropping empty ones and `.`; `..` is kept for the resolver. */
export function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** How a tree answers the resolver: the target of the symlink at these components, if it is one. */
export interface SymlinkSource {
  readlink(comps: readonly string[]): string | undefined;
  /**
   * Called when resolution would leave the root (`..` above it, or an absolute symlink target).
   * By default the root acts as a chroot: `..` stays at the root and absolute targets start there.
   * Throw to refuse instead.
   */
  onEscape?(why: 'dotdot' | 'absolute', target?: string): void;
}

/**
 * Resolves `p` against a tree the way a chroot would, following symlinks component by component
 * (the last one only with `followFinal`). Missing components are kept as written. The result never
 * leaves the root.
 */
export function resolveComponents(p: string, tree: SymlinkSource, followFinal = true): string[] {
  const resolved: string[] = [];
  let pending = components(p);
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      if (resolved.length === 0) tree.onEscape?.('dotdot');
      resolved.pop();
      continue;
    }
    const target = pending.length > 0 || followFinal ? tree.readlink([...resolved, c]) : undefined;
    if (target === undefined) {
      resolved.push(c);
      continue;
    }
    if (++hops > MAX_SYMLINKS) throw new TsbuildError(`too many levels of symbolic links resolving ${p}`);
    if (target.startsWith('/')) {
      tree.onEscape?.('absolute', target);
      resolved.length = 0;
    }
    pending = [...components(target), ...pending];
  }
  return resolved;
}

/** A directory tree on the host as a SymlinkSource. */
export function hostTree(root: string, onEscape?: SymlinkSource['onEscape']): SymlinkSource {
  return {
    readlink(comps) {
      const file = path.join(root, ...comps);
      try {
        return lstatSync(file).isSymbolicLink() ? readlinkSync(file) : undefined;
      } catch {
        return undefined;
      }
    },
    onEscape,
  };
}

/** Resolves `p` inside the host directory `root` (see resolveComponents); returns a host path. */
export function resolveInRoot(root: string, p: string, followFinal = true): string {
  return path.join(root, ...resolveComponents(p, hostTree(root), followFinal));
}

/** Whether `child` is `parent` or inside it (both absolute, normalised). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

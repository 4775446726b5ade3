import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors.js';

const MAX_SYMLINKS = 40;

/** Splits a path into its components, dropping empty ones and `.`; `..` is kept for the resolver. */
export function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `p` inside `root` the way a chroot would: `..` stops at the root, absolute symlinks
 * restart at the root, relative ones continue from their directory. The result is always inside
 * `root`. With `followFinal` false, a symlink as the last component is returned as itself.
 * Missing components are kept as they are (the result may not exist).
 */
export function resolveInRoot(root: string, p: string, followFinal = true): string {
  const resolved: string[] = [];
  let pending = components(p);
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, c);
    let st: Stats | undefined;
    try {
      st = lstatSync(candidate);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (pending.length > 0 || followFinal)) {
      if (++hops > MAX_SYMLINKS) throw new TsbuildError(`too many levels of symbolic links resolving ${p}`);
      const target = readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...components(target), ...pending];
      continue;
    }
    resolved.push(c);
  }
  return path.join(root, ...resolved);
}

/** Whether `child` is `parent` or inside it (both absolute, normalised). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

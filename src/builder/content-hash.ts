// The digest of COPY's sources that its cache key carries.
import { createHash } from 'node:crypto';
import type { EntryStat } from '../fs/scan-dir.js';
import type { StatCache } from '../store/stat-cache.js';
import { isSent, type SourceEntry, type SourceTree } from './source-tree.js';

/**
 * What COPY's cache key hashes of its sources: every path it would copy (after .dockerignore) with
 * its type, mode, link target and content digest (through the stat cache); never mtimes, nor the
 * files' owners, which COPY replaces.
 */
export function hashSources(tree: SourceTree, entries: readonly SourceEntry[], stats: StatCache): string {
  const hash = createHash('sha256');
  const line = (rel: string, st: EntryStat, comps: readonly string[]) => {
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    const detail = kind === 'f' ? stats.digest(tree.hostPath(comps), st, tree.readContent && (() => tree.readContent!(comps, st))) : kind === 'l' ? tree.readlink(comps) : '';
    hash.update(`${rel}\0${kind}\0${st.mode & 0o7777}\0${detail}\n`);
  };
  const walk = (comps: readonly string[], rel: string) => {
    for (const name of tree.readdir(comps)) {
      const child = [...comps, name];
      const childRel = `${rel}/${name}`;
      const st = tree.lstat(child);
      if (!st) continue;
      if (!isSent(tree, child.join('/'), st)) continue;
      line(childRel, st, child);
      if (st.isDirectory()) walk(child, childRel);
    }
  };
  for (const e of entries) {
    line(e.name, e.stat, e.comps);
    if (e.stat.isDirectory()) walk(e.comps, e.name);
  }
  return hash.digest('hex');
}

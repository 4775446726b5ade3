// The digest of COPY's sources that its cache key carries.
import { createHash } from 'node:crypto';
import type { EntryStat } from '../fs/scan-dir.js';
import type { StatCache } from '../store/stat-cache.js';
import { ContextTree, isSent, type SourceEntry, type SourceTree } from './source-tree.js';

/** Lines are hashed in batches this big: 100,000 files make 100,000 lines. */
const BATCH = 64 * 1024;

/**
 * What COPY's cache key hashes of its sources: every path it would copy (after .dockerignore) with
 * its type, mode, link target and content digest (through the stat cache); never mtimes, nor the
 * files' owners, which COPY replaces.
 */
export function hashSources(tree: SourceTree, entries: readonly SourceEntry[], stats: StatCache): string {
  const hash = createHash('sha256');
  let pending = '';
  // the stat cache's key: the path in the context, or for another tree's files, their host path's
  const inContext = tree instanceof ContextTree;
  /** One entry's line; `comps` made only when its content or link target must be read. */
  const line = (rel: string, st: EntryStat, comps: () => readonly string[], treeRel: string) => {
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    let detail = '';
    if (kind === 'f') {
      const file = () => tree.hostPath(comps());
      detail = stats.digest(inContext ? treeRel : stats.keyOf(file()), st, file, tree.readContent && (() => tree.readContent!(comps(), st)));
    } else if (kind === 'l') detail = tree.readlink(comps());
    pending += `${rel}\0${kind}\0${st.mode & 0o7777}\0${detail}\n`;
    if (pending.length >= BATCH) {
      hash.update(pending);
      pending = '';
    }
  };
  const walk = (comps: readonly string[], rel: string, treeRel: string) => {
    for (const [name, st] of tree.list(comps)) {
      const childTreeRel = treeRel === '' ? name : `${treeRel}/${name}`;
      if (!isSent(tree, childTreeRel, st)) continue;
      const childRel = `${rel}/${name}`;
      line(childRel, st, () => [...comps, name], childTreeRel);
      if (st.isDirectory()) walk([...comps, name], childRel, childTreeRel);
    }
  };
  for (const e of entries) {
    const treeRel = e.comps.join('/');
    line(e.name, e.stat, () => e.comps, treeRel);
    if (e.stat.isDirectory()) walk(e.comps, e.name, treeRel);
  }
  hash.update(pending);
  return hash.digest('hex');
}

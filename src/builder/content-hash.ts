// The digest of COPY's sources that its cache key carries.
import type { EntryStat } from '../fs/scan-dir.js';
import type { StatCache } from '../store/stat-cache.js';
import { createSha256 } from '../util/digest.js';
import { ContextTree, isSent, type SourceEntry, type SourceTree } from './source-tree.js';

/** Lines are hashed in batches this big: 100,000 files make 100,000 lines. */
const BATCH = 64 * 1024;

/**
 * What COPY's cache key hashes of its sources: every path it would copy (after .dockerignore) with
 * its type, mode, link target and content digest (through the stat cache); never mtimes, nor the
 * files' owners, which COPY replaces. `keep` gets those lines (in chunks): the build cache's step
 * record keeps them, to tell which files changed when the step misses (cache-miss.ts).
 */
export function hashSources(tree: SourceTree, entries: readonly SourceEntry[], stats: StatCache, keep?: string[]): string {
  const hash = createSha256();
  let pending = '';
  // the stat cache's key: the path in the context, or for another tree's files, their host path's
  const inContext = tree instanceof ContextTree;
  const emit = (rel: string, kind: string, st: EntryStat, detail: string) => {
    pending += `${rel}\0${kind}\0${st.mode & 0o7777}\0${detail}\n`;
    if (pending.length >= BATCH) {
      hash.update(pending);
      keep?.push(pending);
      pending = '';
    }
  };
  const kindOf = (st: EntryStat) => (st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o');
  /** One entry's line; `comps` made only when its content or link target must be read. */
  const line = (rel: string, st: EntryStat, comps: () => readonly string[], treeRel: string, known?: string) => {
    const kind = kindOf(st);
    let detail = '';
    if (kind === 'f') {
      const file = () => tree.hostPath(comps());
      detail = known ?? stats.digest(inContext ? treeRel : stats.keyOf(file()), st, file, tree.readContent && (() => tree.readContent!(comps(), st)));
    } else if (kind === 'l') detail = tree.readlink(comps());
    emit(rel, kind, st, detail);
  };
  /**
   * A directory's files the stat cache does not know, read and hashed together on threads (when
   * the tree can): what a cold COPY of 100,000 small files spends its time on.
   */
  const hashed = (comps: readonly string[], list: ReadonlyArray<readonly [string, EntryStat]>, treeRel: string): Map<string, string> => {
    const out = new Map<string, string>();
    if (!inContext || !tree.hashFiles) return out;
    const unknown: Array<readonly [string, EntryStat]> = [];
    for (const entry of list) {
      const [name, st] = entry;
      if (!st.isFile()) continue;
      const key = treeRel === '' ? name : `${treeRel}/${name}`;
      if (!isSent(tree, key, st)) continue;
      const known = stats.lookup(key, st);
      if (known !== undefined) out.set(name, known);
      else unknown.push(entry);
    }
    // (even one: asking the stat cache a second time for it, below, would take it out of its order)
    if (unknown.length === 0) return out;
    const hashedAt = Date.now();
    const digests = tree.hashFiles(comps, unknown);
    for (const [i, [name, st]] of unknown.entries()) {
      const digest = digests[i];
      if (digest === undefined) continue; // changed while read: hashed again below, as it is then
      stats.remember(treeRel === '' ? name : `${treeRel}/${name}`, st, digest, hashedAt);
      out.set(name, digest);
    }
    return out;
  };
  const walk = (comps: readonly string[], rel: string, treeRel: string) => {
    const list = tree.list(comps);
    const digests = hashed(comps, list, treeRel);
    for (const [name, st] of list) {
      const childTreeRel = treeRel === '' ? name : `${treeRel}/${name}`;
      if (!isSent(tree, childTreeRel, st)) continue;
      const childRel = `${rel}/${name}`;
      line(childRel, st, () => [...comps, name], childTreeRel, digests.get(name));
      if (st.isDirectory()) walk([...comps, name], childRel, childTreeRel);
    }
  };
  for (const e of entries) {
    const treeRel = e.comps.join('/');
    line(e.name, e.stat, () => e.comps, treeRel);
    if (e.stat.isDirectory()) walk(e.comps, e.name, treeRel);
  }
  hash.update(pending);
  keep?.push(pending);
  return hash.digest('hex');
}

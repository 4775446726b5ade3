// The `rmi`, `system df`, `prune` and `fsck` commands.
import { parseDuration, parseSize } from '../../util/units.js';
import { TsbuildError, UsageError } from '../../errors.js';
import { fsck, prune, usage, type RecordType, type UsageRow } from '../../store/gc.js';
import { removeImage } from '../../store/remove-image.js';
import type { Store } from '../../store/store.js';
import { table } from '../format.js';
import { humanSize } from '../../util/units.js';
import type { Io } from '../io.js';

export async function rmiCommand(store: Store, names: string[], force: boolean, io: Io): Promise<void> {
  for (const n of names) {
    const report = await removeImage(store, n, force);
    for (const t of report.untagged) io.out(`Untagged: ${t}`);
    for (const d of report.deleted) io.out(`Deleted: ${d}`);
  }
}

export function dfCommand(store: Store, io: Io): void {
  const u = usage(store);
  const rows = [['TYPE', 'TOTAL', 'SIZE', 'RECLAIMABLE', 'WITH --all']];
  const named: Array<[string, UsageRow]> = [['Images', u.images], ['Layers', u.layers], ['Build Cache', u.cache], ['Cache Mounts', u.cacheMounts], ['Compressed Layers', u.compressed]];
  for (const [name, r] of named) rows.push([name, String(r.count), humanSize(r.size), humanSize(r.reclaimable), humanSize(r.reclaimableAll)]);
  io.out(table(rows));
  const sum = (k: 'reclaimable' | 'reclaimableAll') => named.reduce((n, [, r]) => n + r[k], 0);
  io.out(`\`prune\` would free ${humanSize(sum('reclaimable'))}; \`prune --all\` ${humanSize(sum('reclaimableAll'))}`);
}

const RECORD_TYPES: RecordType[] = ['exec.cachemount', 'regular'];

/** Docker's `--filter until=24h` (Go durations) and `type=exec.cachemount|regular`, and `--keep-storage 10GB` (sizes). */
export async function pruneCommand(store: Store, flags: { all?: boolean; filter: string[]; keepStorage?: string }, io: Io): Promise<void> {
  let olderThanMs: number | undefined;
  let types: Set<RecordType> | undefined;
  for (const f of flags.filter) {
    const eq = f.indexOf('=');
    const [key, value] = eq < 0 ? [f, ''] : [f.slice(0, eq), f.slice(eq + 1)];
    if (key === 'type') {
      if (!RECORD_TYPES.includes(value as RecordType)) throw new UsageError(`invalid filter "${f}": type is ${RECORD_TYPES.join(' or ')}`);
      (types ??= new Set()).add(value as RecordType);
    } else if (key === 'until') {
      try {
        olderThanMs = parseDuration(value) / 1e6;
      } catch (err) {
        throw new UsageError(`invalid filter "${f}": ${(err as Error).message}`);
      }
    } else throw new UsageError(`invalid filter "${f}": until=DURATION and type=${RECORD_TYPES.join('|')} are supported`);
  }
  let keepStorage: number | undefined;
  if (flags.keepStorage !== undefined) {
    keepStorage = parseSize(flags.keepStorage.replace(/B$/i, ''));
    if (keepStorage === undefined) throw new UsageError(`invalid --keep-storage "${flags.keepStorage}"`);
  }
  const r = await prune(store, { all: flags.all, olderThanMs, keepStorage, types });
  io.out(`Deleted images: ${r.images}, build cache entries: ${r.cacheEntries}, layers: ${r.layers}, blobs: ${r.blobs}, cache mounts: ${r.cacheMounts}`);
  io.out(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
}

export async function fsckCommand(store: Store, io: Io): Promise<void> {
  const problems = await store.collecting(() => fsck(store)); // no prune or rmi under it
  for (const p of problems) io.err(p);
  if (problems.length > 0) throw new TsbuildError(`fsck: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${store.root}`);
  io.out(`fsck: ${store.root} is consistent`);
}

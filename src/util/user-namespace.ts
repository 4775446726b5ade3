// Whether tsbuild runs as root of a user namespace (rootless), and how many ids that namespace maps.
import { readFileSync } from 'node:fs';

interface IdRange {
  inside: number;
  count: number;
}

function readMap(file: string): IdRange[] | undefined {
  try {
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .map(([inside = 0, , count = 0]) => ({ inside, count }));
  } catch {
    return undefined; // no /proc: as the machine's own
  }
}

let uidMap: IdRange[] | undefined | null = null;

function uids(): IdRange[] | undefined {
  if (uidMap === null) uidMap = readMap('/proc/self/uid_map');
  return uidMap;
}

/**
 * Whether this process runs in a user namespace of its own rather than the machine's: an ordinary
 * user's build (bin/tsbuild.cjs enters one through native/userns.c), or root of a user-namespaced
 * container. There the kernel refuses device nodes and trusted.* xattrs, so overlayfs keeps its
 * markers in user.* xattrs (its userxattr option) and /dev is bound from the host's.
 */
export function inUserNamespace(): boolean {
  const map = uids();
  return !!map && !(map.length === 1 && map[0]!.inside === 0 && map[0]!.count === 4294967295);
}

/** How many uids (kind 'uid') or gids, 0 up with no gap, this namespace maps: files can be owned by ids below it. */
export function mappedIds(kind: 'uid' | 'gid'): number {
  const map = kind === 'uid' ? uids() : readMap('/proc/self/gid_map');
  if (!map) return 4294967295;
  let next = 0;
  for (const r of [...map].sort((a, b) => a.inside - b.inside)) {
    if (r.inside !== next) break;
    next += r.count;
  }
  return next;
}

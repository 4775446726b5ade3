// A directory's entries with their lstat, in one native call.
import type { Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { native } from '../native/index.js';

/** What tsbuild reads of an lstat: Node's Stats has it, and so has a ScannedStat. */
export type EntryStat = Pick<Stats, 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'ctimeMs' | 'ino' | 'dev' | 'nlink'>;

const S_IFMT = 0o170000;
const FIELDS = 12;

/** One entry of a scan: the numbers lstat gives, times in milliseconds computed as Node computes them. */
class ScannedStat implements EntryStat {
  constructor(
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly size: number,
    readonly mtimeMs: number,
    readonly ctimeMs: number,
    readonly ino: number,
    readonly dev: number,
    readonly nlink: number,
  ) {}

  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }
}

export interface DirScan {
  /** The directory's real path, read from the descriptor that listed it. */
  real: string;
  /** Every entry (not `.` nor `..`), by name. */
  entries: Map<string, EntryStat>;
}

/** Node's own formula (seconds * 1e3 + nanoseconds / 1e6): a time compares equal to what lstat gave. */
const ms = (s: number, ns: number) => s * 1e3 + ns / 1e6;

/** What the addon gives for one directory: names each ended by a NUL, FIELDS numbers per entry. */
interface RawScan {
  real: string;
  names: string;
  stats: Float64Array;
}

function toScan({ real, names, stats }: RawScan): DirScan {
  const entries = new Map<string, EntryStat>();
  for (let i = 0, at = 0; at < names.length; i++) {
    const end = names.indexOf('\0', at);
    const f = i * FIELDS;
    entries.set(names.slice(at, end), new ScannedStat(stats[f]!, stats[f + 1]!, stats[f + 2]!, stats[f + 3]!, ms(stats[f + 4]!, stats[f + 5]!), ms(stats[f + 6]!, stats[f + 7]!), stats[f + 8]!, stats[f + 9]!, stats[f + 10]!));
    at = end + 1;
  }
  return { real, entries };
}

/** Lists a directory (not followed if it is a symlink) with every entry's lstat, as readdir plus lstat would. */
export function scanDir(dir: string): DirScan {
  return toScan(native().scanDir(dir));
}

/**
 * scanDir of several directories, on as many threads as there are CPUs: the lstat of each entry
 * is the kernel's work, and most of a walk's time. A directory that fails gives its Error.
 */
export function scanDirs(dirs: readonly string[]): Array<DirScan | Error> {
  if (dirs.length === 0) return [];
  return native()
    .scanDirs([...dirs], Math.min(dirs.length, availableParallelism()))
    .map((r) => (r instanceof Error ? r : toScan(r)));
}

// Directories held open, so files can be opened beneath them (openat2) without a path walk from /.
import { closeSync, constants, openSync } from 'node:fs';

/** At most this many stay open: a build reads beneath one or two (its contexts). */
const KEPT = 8;
const open = new Map<string, number>();

/**
 * A descriptor for a directory, opened once and kept (the least recently opened is closed beyond
 * KEPT). Use it at once, in the same synchronous call: a later call may close it.
 */
export function dirFd(dir: string): number {
  const known = open.get(dir);
  if (known !== undefined) return known;
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  open.set(dir, fd);
  for (const [oldest, oldFd] of open) {
    if (open.size <= KEPT) break;
    open.delete(oldest);
    closeSync(oldFd);
  }
  return fd;
}

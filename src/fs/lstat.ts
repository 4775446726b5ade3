// lstat without throwing.
import { lstatSync, type Stats } from 'node:fs';

/**
 * lstat, or null when nothing is there. A missing entry is the common answer (a name looked up
 * through every layer of a stack): `throwIfNoEntry` spares making an Error with its stack for it.
 */
export function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null; // ENOTDIR: a file where a directory was looked for
  }
}

// lstat without throwing.
import { lstatSync, type Stats } from 'node:fs';

/** lstat, or null when nothing is there. */
export function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

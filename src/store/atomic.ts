import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { processAlive } from './lock.js';

/** A name for a temporary sibling of `file`, unique to this process. */
export function tempSibling(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The owner process of a tempSibling name, or undefined when `name` is not one. */
export function tempSiblingOwner(name: string): number | undefined {
  const m = /^\..+\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes temp siblings of `file` that a killed process left (its pid is gone): outside the store
 * (an -o file) nothing else would. Called before writing `file` again.
 */
export function removeDeadSiblings(file: string): void {
  const prefix = `.${path.basename(file)}.tmp-`;
  for (const name of readdirSync(path.dirname(file))) {
    if (!name.startsWith(prefix)) continue;
    const pid = tempSiblingOwner(name);
    if (pid !== undefined && pid !== process.pid && !processAlive(pid)) rmSync(path.join(path.dirname(file), name), { force: true });
  }
}

/**
 * Writes the whole file or nothing: a temp file, fsync (unless `durable` is false: for caches, whose
 * loss costs only a recomputation), rename over the target.
 */
export function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644, durable = true): void {
  const tmp = tempSibling(file);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

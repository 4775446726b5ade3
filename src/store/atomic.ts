// Writes that are whole or absent: temp file, fsync, rename; and their leftovers.
import { closeSync, fstatSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { randomHex } from '../util/digest.js';

/** A name for a temporary sibling of `file`, unique to this process. */
export function tempSibling(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomHex(4)}`);
}

/** The owner process of a tempSibling name, or undefined when `name` is not one. */
export function tempSiblingOwner(name: string): number | undefined {
  const m = /^\..+\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes temp siblings of `file` that a killed process left: outside the store (an -o file)
 * nothing else would. Their writers hold an flock on them while they write (lockWhileWriting), so
 * a sibling nobody holds is dead, whatever PID namespace or host wrote it. Called before writing
 * `file` again.
 */
export function removeDeadSiblings(file: string): void {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // a directory we may write but not list: nothing to tidy
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || tempSiblingOwner(name) === undefined) continue;
    const sibling = path.join(dir, name);
    let fd: number;
    try {
      fd = openSync(sibling, 'r');
    } catch {
      continue;
    }
    try {
      if (native().tryLock(fd, true)) rmSync(sibling, { force: true });
    } finally {
      closeSync(fd);
    }
  }
}

/** Marks an open temp sibling as being written, for removeDeadSiblings; the kernel drops it when the process dies. */
export function lockWhileWriting(fd: number): void {
  native().tryLock(fd, true);
}

/** A JSON file, or undefined when it is missing or unreadable: for records whose loss costs only a recomputation. */
export function readJsonIfAny<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Writes the whole file or nothing: a temp file, fsync (unless `durable` is false: for caches, whose
 * loss costs only a recomputation), rename over the target. Returns the inode of the file written
 * (what another writer renames over it later does not change that).
 */
export function writeFileAtomic(file: string, data: Buffer | string, mode = 0o644, durable = true): number {
  const tmp = tempSibling(file);
  try {
    const fd = openSync(tmp, 'wx', mode);
    let ino: number;
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (durable) fsyncSync(fd);
      ino = fstatSync(fd).ino;
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    return ino;
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

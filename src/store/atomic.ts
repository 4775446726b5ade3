import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** A name for a temporary sibling of `file`, unique to this process. */
export function tempSibling(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
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

// Locks between processes (flock).
import { closeSync, openSync } from 'node:fs';
import { errnoCode, TsbuildError } from '../errors.js';
import { native } from '../native/index.js';

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * A lock between processes: flock(2) on a lock file that is never removed, exclusive or shared. The
 * kernel drops it when its holder dies, however it dies, so there are no stale locks to break.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T> | T, timeoutMs = 120_000, shared = false): Promise<T> {
  const fd = openSync(lockFile, 'a', 0o644);
  try {
    const deadline = Date.now() + timeoutMs;
    while (!native().tryLock(fd, !shared)) {
      if (Date.now() > deadline) throw new TsbuildError(`timed out waiting for the store lock ${lockFile}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return await fn(); // closing the descriptor releases the lock
  } finally {
    closeSync(fd);
  }
}

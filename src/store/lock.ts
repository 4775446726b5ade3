import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, TsbuildError } from '../errors.js';

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
 * An exclusive lock held by a file that names its owner's pid. A lock whose owner died (a killed
 * build) is taken over; a live one is waited for.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T> | T, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(lockFile, 'utf8'));
      } catch {
        continue; // released between our open and read
      }
      if (owner === process.pid || (owner && !processAlive(owner))) {
        rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new TsbuildError(`timed out waiting for the store lock ${lockFile} (held by pid ${owner})`);
      await sleep(10);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

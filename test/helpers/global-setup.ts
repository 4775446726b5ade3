import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Gives the run a directory of its own for every temp dir the tests make (fixtures.ts tempDir),
 * removed when the run ends: a run leaves gigabytes of stores and contexts otherwise. Then starts
 * dockerd for the tests that load images into it, when it is installed but not running.
 */
export default async function setup(): Promise<() => void> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-tests-'));
  process.env.TSBUILD_TEST_TMP = runDir;
  const teardown = () => rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  await startDockerd();
  return teardown;
}

async function startDockerd(): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/dockerd') || !existsSync('/usr/bin/docker')) return;
  const running = () => {
    try {
      execFileSync('/usr/bin/docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
      return true;
    } catch {
      return false;
    }
  };
  if (running()) return;
  spawn('/usr/sbin/dockerd', ['--storage-driver=overlay2'], { detached: true, stdio: 'ignore' }).unref();
  for (let i = 0; i < 60 && !running(); i++) await new Promise((r) => setTimeout(r, 1000));
}

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Starts dockerd for the tests that load images into it, when it is installed but not running. */
export default async function setup(): Promise<void> {
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

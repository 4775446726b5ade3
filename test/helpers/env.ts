import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export type Requirement = 'root' | 'docker' | 'podman' | 'skopeo' | 'strace';

/**
 * Whether a kind of test cannot run here, for vitest's `skipIf`: the reason is printed, and vitest
 * reports the tests as skipped (the summary reporter fails a CI run that skipped anything).
 */
export function lacks(...what: Requirement[]): boolean {
  for (const w of what) {
    const reason = missing(w);
    if (reason) {
      console.warn(`skipping ${w} tests: ${reason}`);
      return true;
    }
  }
  return false;
}

const seen = new Map<Requirement, string | undefined>();

/** Why a kind of test cannot run here, or undefined when it can. */
export function missing(what: Requirement): string | undefined {
  if (!seen.has(what)) seen.set(what, check(what));
  return seen.get(what);
}

function check(what: Requirement): string | undefined {
  if (what === 'root') return process.getuid?.() === 0 ? undefined : 'tsbuild needs root for namespaces and overlay mounts';
  const bin = { docker: '/usr/bin/docker', podman: '/usr/bin/podman', skopeo: '/usr/bin/skopeo', strace: '/usr/bin/strace' }[what];
  if (!existsSync(bin)) return `${bin} is not installed`;
  if (what === 'docker') {
    try {
      execFileSync(bin, ['info'], { stdio: 'ignore', timeout: 20_000 });
    } catch {
      return 'dockerd is not running';
    }
  }
  return undefined;
}

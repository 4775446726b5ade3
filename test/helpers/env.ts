import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Why a kind of test cannot run here, or undefined when it can. On CI every reason is a failure. */
export function missing(what: 'root' | 'docker' | 'podman' | 'skopeo' | 'strace'): string | undefined {
  const reason = check(what);
  if (reason && process.env.CI) throw new Error(`CI must run the ${what} tests, but: ${reason}`);
  if (reason) console.warn(`skipping ${what} tests: ${reason}`);
  return reason;
}

function check(what: string): string | undefined {
  if (what === 'root') return process.getuid?.() === 0 ? undefined : 'tsbuild needs root for namespaces and overlay mounts';
  const bin = { docker: '/usr/bin/docker', podman: '/usr/bin/podman', skopeo: '/usr/bin/skopeo', strace: '/usr/bin/strace' }[what]!;
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

import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

/** Runs tsbuild on a pseudo-terminal (util-linux script), typing `input` into it; returns what the terminal showed. */
function onTerminal(root: string, args: string[], input: string): { code: number; screen: string } {
  const command = [process.execPath, BIN_PATH, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { input, env: { ...process.env, TSBUILD_ROOT: root }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, screen: r.stdout.replace(/\r/g, '') };
}

describe.skipIf(lacks('root'))('a shell in a failed step, and tsbuild run', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox:1.36']);
    await ok(root, ['build', '-t', 'app', context({ Dockerfile: 'FROM busybox:1.36\nENV GREETING=hello\nWORKDIR /srv\nRUN echo data > /srv/data\nCMD ["cat", "/srv/data"]\n' })]);
  });

  it('--on-error=shell opens a shell where the RUN failed: its files as the command left them, its environment, directory, user and mounts; leaving it fails the build with the error', () => {
    const ctx = context({
      Dockerfile: 'FROM busybox:1.36\nENV MODE=debug\nUSER 1000:1000\nWORKDIR /tmp/w\nRUN --mount=type=bind,source=input,target=/in echo partial > /tmp/w/out && cat /in/x && exit 5\n',
      'input/x': 'mounted\n',
    });
    const { code, screen } = onTerminal(root, ['build', '--on-error=shell', '--progress=plain', ctx], 'echo "[$(cat /tmp/w/out) $MODE $(pwd) $(id -u) $(cat /in/x)]"\nexit\n');
    expect(code).toBe(1);
    expect(screen).toContain('the command failed; /bin/sh opens in its filesystem as it left it');
    expect(screen).toContain('[partial debug /tmp/w 1000 mounted]');
    expect(screen.trim().split('\n').at(-1)).toMatch(/Dockerfile:5: RUN failed: process ".*" did not complete successfully: exit code: 5$/);
  });

  it('--on-error=shell without a terminal says so, and fails as usual', async () => {
    const r = await tsbuild(root, ['build', '--on-error=shell', '--progress=plain', context({ Dockerfile: 'FROM busybox:1.36\nRUN exit 4\n' })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('#2 --on-error=shell: standard input is not a terminal: no shell opened');
    expect(r.stderr).toMatch(/exit code: 4$/);
  });

  it('tsbuild run runs the image\'s CMD, or a command, in the sandbox, with the exit code, standard input, -e, -w and -u; nothing it changes stays', async () => {
    expect((await ok(root, ['run', 'app'])).stdout).toBe('data');
    expect((await ok(root, ['run', '--rm', 'app', 'sh', '-c', 'echo "$GREETING $(pwd) $(hostname)"'])).stdout).toBe('hello /srv buildkitsandbox');
    expect((await ok(root, ['run', '-e', 'GREETING=hi', '-w', '/tmp', '-u', '1234', 'app', 'sh', '-c', 'echo "$GREETING $(pwd) $(id -u)"'])).stdout).toBe('hi /tmp 1234');
    const r = await tsbuild(root, ['run', 'app', 'sh', '-c', 'touch /srv/made; ls -la | wc -l >&2; exit 3']);
    expect(r.code).toBe(3);
    expect((await tsbuild(root, ['run', 'app', 'ls', '/srv/made'])).code).not.toBe(0);
    const piped = spawnSync(process.execPath, [BIN_PATH, 'run', 'app', 'tr', 'a-z', 'A-Z'], { input: 'shout\n', env: { ...process.env, TSBUILD_ROOT: root }, encoding: 'utf8' });
    expect(piped.stdout).toBe('SHOUT\n');
    expect((await ok(root, ['run', '--network', 'none', 'app', 'sh', '-c', 'ls /sys/class/net'])).stdout).toBe('lo');
    const missing = await tsbuild(root, ['run', 'nosuch']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tsbuild: image "nosuch" not found in the store/);
  });

  it('tsbuild run opens an interactive shell on a terminal', () => {
    const { code, screen } = onTerminal(root, ['run', 'app', 'sh'], 'echo "in $(pwd)"\nexit 6\n');
    expect(code).toBe(6);
    expect(screen).toContain('in /srv');
  });
});

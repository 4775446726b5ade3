// RUN --mount=type=ssh: a real ssh-agent reached from a step (ssh-add -l inside it), never in a layer, the history or the cache key.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

/** The host's ssh-add and the libraries it loads, laid out as a root filesystem to COPY into busybox. */
function sshAddSysroot(dir: string): void {
  const files = ['/usr/bin/ssh-add', ...execFileSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' }).split('\n').flatMap((l) => /(\/\S+) \(0x/.exec(l)?.[1] ?? [])];
  for (const f of files) {
    mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    copyFileSync(realpathSync(f), path.join(dir, f));
  }
}

function startAgent(dir: string): Promise<{ socket: string; child: ChildProcess }> {
  const socket = path.join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const tick = () => (existsSync(socket) ? resolve({ socket, child }) : Date.now() > deadline ? reject(new Error('no agent')) : setTimeout(tick, 20));
    tick();
  });
}

describe.skipIf(lacks('root'))('RUN --mount=type=ssh', () => {
  const root = tempDir('store-');
  const keys = tempDir('ssh-keys-');
  const key = path.join(keys, 'id_ed25519');
  let agent: { socket: string; child: ChildProcess };
  let fingerprint: string;
  const sysroot = tempDir('ssh-sysroot-');

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild-test', '-f', key]);
    fingerprint = execFileSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    agent = await startAgent(keys);
    execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket } });
    sshAddSysroot(sysroot);
  });
  afterAll(() => agent?.child.kill());

  const dockerfile = (run: string) => ({ Dockerfile: `FROM busybox\nCOPY sysroot/ /\n${run}\n` });
  function withSysroot(files: Record<string, string>): string {
    const dir = context(files);
    execFileSync('cp', ['-a', `${sysroot}/.`, path.join(dir, 'sysroot')]);
    return dir;
  }

  it('the agent --ssh names answers ssh-add -l in the step; nothing of it reaches the layer, the history or the cache key', async () => {
    const dir = withSysroot(dockerfile('RUN --mount=type=ssh ssh-add -l > /keys && echo "$SSH_AUTH_SOCK" > /sock'));
    const r = await ok(root, ['build', '-q', '--ssh', `default=${agent.socket}`, dir]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    const diff = path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff');
    expect(readFileSync(path.join(diff, 'keys'), 'utf8')).toContain(fingerprint);
    expect(readFileSync(path.join(diff, 'sock'), 'utf8')).toBe('/run/buildkit/ssh_agent.0\n');
    expect(existsSync(path.join(diff, 'run'))).toBe(false);
    expect(JSON.stringify(image.History ?? [])).not.toContain(agent.socket);
    // another socket for the same agent: the same key, a cache hit
    const again = await ok(root, ['build', '--progress', 'plain', '--ssh', `default=${agent.socket}`, dir]);
    expect(again.stderr).toMatch(/RUN --mount=type=ssh ssh-add -l[^\n]*\n#\d+ CACHED/);
  });

  it('key files: tsbuild holds them in an agent of its own; a non-root step user reaches it with uid=', async () => {
    const dir = withSysroot(dockerfile('USER 1000\nRUN --mount=type=ssh,id=deploy,uid=1000 ssh-add -l > /tmp/keys && cat /tmp/keys'));
    const r = await ok(root, ['build', '--progress', 'plain', '--ssh', `deploy=${key}`, dir]);
    expect(r.stderr).toContain(fingerprint);
  });

  it('a required agent that is not given is one line; an optional one is skipped', async () => {
    const r = await tsbuild(root, ['build', '-q', withSysroot(dockerfile('RUN --mount=type=ssh,required=true true'))]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^tsbuild: .*Dockerfile:3: no SSH key "default" forwarded from the client \(use --ssh default\)$/);
    await ok(root, ['build', '-q', withSysroot(dockerfile('RUN --mount=type=ssh test -z "$SSH_AUTH_SOCK"'))]);
    const bad = await tsbuild(root, ['build', '-q', '--ssh', 'default=/nonexistent.sock', withSysroot(dockerfile('RUN true'))]);
    expect(bad.stderr.trim()).toBe('tsbuild: invalid --ssh "default=/nonexistent.sock": /nonexistent.sock: no such file or socket');
  });
});

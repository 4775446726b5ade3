// --runtime runc: RUN steps through an OCI runtime, as contained as the built-in sandbox and giving the same image.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTop, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('--runtime runc', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  const probe = [
    'FROM busybox',
    'RUN echo made > /made && grep CapEff /proc/self/status > /caps && hostname > /host \\',
    ' && (unshare -n true 2>/dev/null && echo yes || echo no) > /unshare && wc -c < /proc/timer_list > /masked \\',
    ' && (touch /proc/sys/x 2>/dev/null && echo yes || echo no) > /procsys',
    'RUN --mount=type=tmpfs,target=/scratch --mount=type=bind,target=/ctx cat /ctx/data > /scratch/d && cp /scratch/d /copied',
    '',
  ].join('\n');

  it('runs steps with the sandbox\'s capabilities, seccomp denials and masked paths, and gives the same image', async () => {
    const dir = context({ Dockerfile: probe, data: 'from the context\n' });
    const env = ['--build-arg', 'SOURCE_DATE_EPOCH=1700000000', '--no-cache'];
    const viaRunc = await ok(root, ['build', '-q', ...env, '--runtime', 'runc', dir]);
    const builtIn = await ok(root, ['build', '-q', ...env, dir]);
    expect(viaRunc.stdout).toBe(builtIn.stdout);
    const [image] = JSON.parse((await ok(root, ['inspect', viaRunc.stdout.trim()])).stdout);
    expect(image.Layers).toHaveLength(3);
    const read = await buildTop(root, context({ Dockerfile: probe.split('\n').slice(0, 4).join('\n') + '\n', data: 'x' }), ['--no-cache', '--runtime', 'runc']);
    expect(read('made')).toBe('made\n');
    expect(read('caps')).toBe('CapEff:\t00000000a80425fb\n');
    expect(read('host')).toBe('buildkitsandbox\n');
    expect(read('unshare')).toBe('no\n');
    expect(read('masked')).toBe('0\n');
    expect(read('procsys')).toBe('no\n');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('/bundle/rootfs');
  });

  it('a failing step fails as with the sandbox; an unknown runtime is one line', async () => {
    const r = await tsbuild(root, ['build', '-q', '--runtime', 'runc', context({ Dockerfile: 'FROM busybox\nRUN exit 3\n' })]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/Dockerfile:2: RUN failed: process "\/bin\/sh -c exit 3" did not complete successfully: exit code: 3$/);
    const bad = await tsbuild(root, ['build', '-q', '--runtime', 'nosuchruntime', context({ Dockerfile: 'FROM busybox\n' })]);
    expect(bad.stderr.trim()).toBe('tsbuild: --runtime nosuchruntime: not found (install it, or give its path)');
  });
});

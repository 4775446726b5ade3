// RUN --security=insecure: refused without --allow security.insecure; with it, the step is privileged (as BuildKit's).
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTop, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('RUN --security=insecure', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });
  const df = [
    'FROM busybox',
    'RUN grep CapEff /proc/self/status > /default-caps',
    'RUN --security=insecure grep CapEff /proc/self/status > /caps && mkdir /m && mount -t tmpfs none /m && echo mounted > /mounted && umount /m',
    '',
  ].join('\n');

  it('is refused without --allow security.insecure, on its line', async () => {
    const r = await tsbuild(root, ['build', '-q', context({ Dockerfile: df })]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^tsbuild: .*Dockerfile:3: RUN --security=insecure needs --allow security.insecure: the step would run with every capability and no seccomp filter$/);
  });

  it('with --allow security.insecure the step has every capability and may mount; other steps keep Docker\'s set', async () => {
    const read = await buildTop(root, context({ Dockerfile: df }), ['--allow', 'security.insecure']);
    expect(read('mounted')).toBe('mounted\n');
    const caps = (line: string) => BigInt(`0x${line.split(/\s+/)[1]}`);
    const all = caps(read('caps'));
    expect(all & (1n << 21n)).toBe(1n << 21n); // CAP_SYS_ADMIN
    const plain = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN grep CapEff /proc/self/status > /default-caps\n' }));
    expect(caps(plain('default-caps')) & (1n << 21n)).toBe(0n);
    const bad = await tsbuild(root, ['build', '-q', '--allow', 'everything', context({ Dockerfile: 'FROM busybox\n' })]);
    expect(bad.stderr.trim()).toBe('tsbuild: invalid --allow "everything": security.insecure or network.host');
  });
});

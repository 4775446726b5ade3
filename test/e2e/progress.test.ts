import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('--progress', () => {
  const root = tempDir('store-');
  const dockerfile = 'FROM busybox\nRUN echo line one; echo line two\n';
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('plain keeps every line, with step numbers, output and timings', async () => {
    const r = await ok(root, ['--no-cache', '--progress=plain', context({ Dockerfile: dockerfile })]);
    expect(r.stderr).toMatch(/^#2 \[2\/2\] RUN echo line one; echo line two\n#2 CACHE MISS: --no-cache\n#2 \d\.\d{3} line one\n#2 \d\.\d{3} line two\n#2 DONE \d+\.\ds$/m);
    const again = await ok(root, ['--progress=plain', context({ Dockerfile: dockerfile })]);
    expect(again.stderr).toMatch(/^#2 CACHED$/m);
  });

  it('plain stamps each output line with the seconds since its step started, as BuildKit does', async () => {
    const r = await ok(root, ['--no-cache', '--progress=plain', context({ Dockerfile: 'FROM busybox\nRUN echo first; sleep 1.2; echo second\n' })]);
    const [first, second] = [...r.stderr.matchAll(/^#2 (\d+\.\d{3}) (first|second)$/gm)].map((m) => Number(m[1]));
    expect(first).toBeLessThan(1);
    expect(second! - first!).toBeGreaterThanOrEqual(1.1);
  });

  it('numbers steps per stage as BuildKit does: [stage N/M], ONBUILD triggers counted, variables expanded', async () => {
    const df = [
      'FROM busybox AS base',
      'ONBUILD RUN echo triggered',
      'FROM base AS build',
      'ARG V=1.2',
      'ENV DIR=/opt/app',
      'WORKDIR $DIR/$V',
      'RUN echo "v$V in \'$DIR\' $UNSET"',
      'COPY data $DIR/',
      'FROM busybox',
      'COPY --from=build /opt /opt',
    ].join('\n');
    const r = await ok(root, ['--no-cache', '--progress=plain', context({ Dockerfile: df, data: 'd' })]);
    const labels = [...r.stderr.matchAll(/^#\d+ (\[.*)$/gm)].map((m) => m[1]);
    expect(labels).toEqual([
      '[base 1/2] FROM docker.io/library/busybox',
      '[base 2/2] ONBUILD RUN echo triggered',
      '[build 1/7] FROM base',
      '[build 2/7] ONBUILD RUN echo triggered',
      '[build 3/7] ARG V=1.2',
      '[build 4/7] ENV DIR=/opt/app',
      '[build 5/7] WORKDIR /opt/app/1.2',
      '[build 6/7] RUN echo "v1.2 in \'/opt/app\' $UNSET"',
      '[build 7/7] COPY data /opt/app/',
      '[stage-2 1/2] FROM docker.io/library/busybox',
      '[stage-2 2/2] COPY --from=build /opt /opt',
    ]);
  });

  it('pads the step number to the total\'s width; the check warnings come after the steps, before the error, as in buildx', async () => {
    const df = ['FROM busybox', ...Array.from({ length: 9 }, (_, i) => `ENV E${i}=${i}`), 'CMD echo shell form', 'RUN exit 3'].join('\n');
    const r = await tsbuild(root, ['--progress=plain', context({ Dockerfile: df })]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toContain('#1 [ 1/12] FROM docker.io/library/busybox');
    expect(lines.at(-6)).toBe('#12 ERROR: RUN failed: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3');
    expect(lines.slice(-5, -1)).toEqual([
      '',
      ' 2 warnings found (use tsbuild build --check to expand):',
      ' - FromUnpinned: FROM busybox has no tag: the build gets whatever "latest" is when the image is pulled (line 1)',
      ' - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 11)',
    ]);
    expect(lines.at(-1)).toMatch(/^tsbuild: \S*Dockerfile:12: RUN failed: process "\/bin\/sh -c exit 3" did not complete successfully: exit code: 3$/);
  });

  it('rawjson writes one JSON event a line', async () => {
    const r = await ok(root, ['--no-cache', '--progress=rawjson', context({ Dockerfile: dockerfile })]);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id?: number; data?: string });
    expect(events.filter((e) => e.type === 'step').map((e) => e.id)).toEqual([1, 2]);
    const log = events.filter((e) => e.type === 'log').map((e) => Buffer.from(e.data!, 'base64').toString()).join('');
    expect(log).toBe('line one\nline two\n');
    expect(events.filter((e) => e.type !== 'check').at(-1)).toMatchObject({ type: 'info' });
    // the check warnings last, as fields
    expect(events.at(-1)).toEqual({ time: expect.any(String), type: 'check', rule: 'FromUnpinned', message: expect.stringMatching(/^FROM busybox has no tag/), file: expect.any(String), line: 1, fix: expect.any(String) });
  });

  it('tty shows a RUN\'s output live and folds it away when the step succeeds', () => {
    const ctx = context({ Dockerfile: dockerfile });
    const out = execFileSync('script', ['-qc', `${process.execPath} ${BIN_PATH} --no-cache --progress=tty ${ctx}`, '/dev/null'], {
      env: { ...process.env, TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    expect(out).toContain('line one');
    // back over the miss, 2 output lines and the header; why it ran stays on its line
    expect(out).toMatch(/\x1b\[4A\x1b\[J => \[2\] \[2\/2\] RUN echo line one; echo line two {2}\d+\.\ds\x1b\[2m {2}\(--no-cache\)/);
  });

  it('-q prints only the image ID', async () => {
    const r = await ok(root, ['-q', '--no-cache', context({ Dockerfile: dockerfile })]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

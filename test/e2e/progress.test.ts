import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok } from '../helpers/cli.js';
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
    expect(r.stderr).toMatch(/^#2 \[2\/2\] RUN echo line one; echo line two\n#2 line one\n#2 line two\n#2 DONE \d+\.\ds$/m);
    const again = await ok(root, ['--progress=plain', context({ Dockerfile: dockerfile })]);
    expect(again.stderr).toMatch(/^#2 CACHED$/m);
  });

  it('rawjson writes one JSON event a line', async () => {
    const r = await ok(root, ['--no-cache', '--progress=rawjson', context({ Dockerfile: dockerfile })]);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id?: number; data?: string });
    expect(events.filter((e) => e.type === 'step').map((e) => e.id)).toEqual([1, 2]);
    const log = events.filter((e) => e.type === 'log').map((e) => Buffer.from(e.data!, 'base64').toString()).join('');
    expect(log).toBe('line one\nline two\n');
    expect(events.at(-1)).toMatchObject({ type: 'info' });
  });

  it('tty shows a RUN\'s output live and folds it away when the step succeeds', () => {
    const ctx = context({ Dockerfile: dockerfile });
    const out = execFileSync('script', ['-qc', `${process.execPath} ${BIN_PATH} --no-cache --progress=tty ${ctx}`, '/dev/null'], {
      env: { ...process.env, TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    expect(out).toContain('line one');
    expect(out).toMatch(/\x1b\[3A\x1b\[J => \[2\] \[2\/2\] RUN echo line one; echo line two {2}\d+\.\ds/); // back over 2 output lines + the header
  });

  it('-q prints only the image ID', async () => {
    const r = await ok(root, ['-q', '--no-cache', context({ Dockerfile: dockerfile })]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

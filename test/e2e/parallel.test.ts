import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const stages = [
  'FROM busybox AS a',
  'RUN cut -d" " -f1 /proc/uptime > /a-start && sleep 1 && cut -d" " -f1 /proc/uptime > /a-end',
  'FROM busybox AS b',
  'RUN cut -d" " -f1 /proc/uptime > /b-start && sleep 1 && cut -d" " -f1 /proc/uptime > /b-end',
  'FROM busybox',
  'COPY --from=a /a-start /a-end /t/',
  'COPY --from=b /b-start /b-end /t/',
  'RUN cat /t/a-start /t/a-end /t/b-start /t/b-end > /times',
].join('\n');

describe.skipIf(lacks('root'))('independent stages', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  async function times(args: string[]): Promise<number[]> {
    const r = await ok(root, ['-q', '--no-cache', ...args, context({ Dockerfile: stages })]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    const file = path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff', 'times');
    return readFileSync(file, 'utf8').trim().split('\n').map(Number); // seconds of uptime, 10 ms steps
  }

  it('run side by side (--jobs defaults to the number of CPUs)', async () => {
    const [aStart, aEnd, bStart, bEnd] = await times(['--jobs', '2']);
    expect(aStart! < bEnd! && bStart! < aEnd!).toBe(true); // the two RUNs overlapped
  });

  it('run one after the other with --jobs 1', async () => {
    const [aStart, aEnd, bStart, bEnd] = await times(['--jobs', '1']);
    expect(aEnd! <= bStart! || bEnd! <= aStart!).toBe(true);
  });

  it('a failing stage fails the build with its own error, and stops the others', async () => {
    const r = await tsbuild(root, [context({ Dockerfile: 'FROM busybox AS slow\nRUN sleep 30\nFROM busybox AS bad\nRUN exit 4\nFROM busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n' })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/Dockerfile:4: RUN failed: .*exit code: 4$/);
  });
});

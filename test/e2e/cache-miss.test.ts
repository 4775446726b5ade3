import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

/** Each step's instruction (as its progress line names it) and why it missed, from plain progress. */
async function misses(root: string, ctx: string, args: string[] = []): Promise<Map<string, string>> {
  const r = await ok(root, ['build', '--progress=plain', '-t', 'miss', ...args, ctx]);
  const labels = new Map<string, string>();
  for (const m of r.stderr.matchAll(/^#(\d+) \[[^\]]+\] (.*)$/gm)) labels.set(m[1]!, m[2]!);
  const out = new Map<string, string>();
  for (const m of r.stderr.matchAll(/^#(\d+) CACHE MISS: (.*)$/gm)) out.set(labels.get(m[1]!)!, m[2]!);
  // a step that says why it missed ran; one that ran says why
  const ran = [...r.stderr.matchAll(/^#(\d+) DONE/gm)].map((m) => labels.get(m[1]!)!).filter((l) => !l.startsWith('FROM') && !/^(ARG|ENV|LABEL|CMD) /.test(l));
  expect([...out.keys()].sort()).toEqual(ran.sort());
  return out;
}

describe.skipIf(lacks('root'))('why each step missed the build cache', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    await ok(root, ['import', busyboxRootfsTar(undefined, { 'etc/other-base': 'x' }), 'busybox2']);
  });

  it('a first build, a changed file (and more), the steps after it, and --no-cache', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox\nCOPY src /src\nRUN ls /src > /listing\n',
      'src/app.py': 'print(1)\n',
      'src/util.py': 'x = 1\n',
      'src/old.py': 'y = 1\n',
    });
    expect(await misses(root, ctx)).toEqual(
      new Map([
        ['COPY src /src', 'no earlier build of this step'],
        ['RUN ls /src > /listing', 'no earlier build of this step'],
      ]),
    );
    expect(await misses(root, ctx)).toEqual(new Map()); // all cached
    writeFileSync(path.join(ctx, 'src/app.py'), 'print(2)\n');
    writeFileSync(path.join(ctx, 'src/new.py'), 'z = 1\n');
    await import('node:fs').then((fs) => fs.rmSync(path.join(ctx, 'src/old.py')));
    expect(await misses(root, ctx)).toEqual(
      new Map([
        ['COPY src /src', 'src/app.py changed (and 2 more files)'],
        ['RUN ls /src > /listing', 'the step before it changed'],
      ]),
    );
    expect(await misses(root, ctx, ['--no-cache'])).toEqual(
      new Map([
        ['COPY src /src', '--no-cache'],
        ['RUN ls /src > /listing', '--no-cache'],
      ]),
    );
  });

  it('a build arg, with its values; a secret-like one without', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nARG VERSION=1\nARG API_TOKEN=a\nRUN echo "$VERSION" > /v\n' });
    await misses(root, ctx);
    // (the step's name shows the values expanded, as BuildKit's does)
    expect(await misses(root, ctx, ['--build-arg', 'VERSION=2'])).toEqual(new Map([['RUN echo "2" > /v', 'build-arg VERSION changed (1 -> 2)']]));
    expect(await misses(root, ctx, ['--build-arg', 'VERSION=2', '--build-arg', 'API_TOKEN=s3cret'])).toEqual(
      new Map([['RUN echo "2" > /v', 'build-arg API_TOKEN changed (value hidden)']]),
    );
    // the step records keep its digest, not its value
    const records = path.join(root, 'cache', 'steps');
    const texts = readdirSync(records).map((f) => readFileSync(path.join(records, f), 'utf8'));
    expect(texts.some((t) => t.includes('VERSION'))).toBe(true);
    expect(texts.some((t) => t.includes('s3cret'))).toBe(false);
  });

  it('the instruction text, an ENV, and the base image', async () => {
    const dockerfile = (run: string, env: string, base = 'busybox') => `FROM ${base}\nENV MODE=${env}\nRUN ${run}\n`;
    const ctx = context({ Dockerfile: dockerfile('echo a > /a', 'x') });
    await misses(root, ctx);
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile('echo b > /a', 'x'));
    expect(await misses(root, ctx)).toEqual(new Map([['RUN echo b > /a', 'instruction text changed']]));
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile('echo b > /a', 'y'));
    expect(await misses(root, ctx)).toEqual(new Map([['RUN echo b > /a', 'ENV MODE changed']]));
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile('echo b > /a', 'y', 'busybox2'));
    expect(await misses(root, ctx)).toEqual(new Map([['RUN echo b > /a', 'the base image changed (FROM busybox2)']]));
  });

  it('a cache entry pruned since, and SOURCE_DATE_EPOCH; prune --all forgets the steps', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN echo pruned > /p\n' });
    await misses(root, ctx);
    await ok(root, ['rmi', 'miss']);
    await ok(root, ['prune', '--keep-storage', '0']);
    expect(await misses(root, ctx)).toEqual(new Map([['RUN echo pruned > /p', 'its cached result is no longer in the store (pruned)']]));
    expect(await misses(root, ctx, ['--build-arg', 'SOURCE_DATE_EPOCH=1700000000'])).toEqual(new Map([['RUN echo pruned > /p', 'SOURCE_DATE_EPOCH changed']]));
    await ok(root, ['rmi', 'miss']);
    await ok(root, ['prune', '--all']);
    expect(await misses(root, ctx)).toEqual(new Map([['RUN echo pruned > /p', 'no earlier build of this step']]));
  });

  it('--progress=rawjson carries the cause and its parts as fields', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nARG V=1\nRUN echo "$V" > /v\n' });
    await misses(root, ctx);
    const r = await ok(root, ['build', '--progress=rawjson', '--build-arg', 'V=2', '-t', 'miss', ctx]);
    const events = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const miss = events.filter((e) => e.type === 'cache-miss');
    expect(miss).toHaveLength(1);
    expect(miss[0]).toMatchObject({ cause: 'build-arg', name: 'V', before: '1', after: '2', reason: 'build-arg V changed (1 -> 2)' });
    const step = events.find((e) => e.type === 'step' && e.id === miss[0].id);
    expect(step.name).toBe('[3/3] RUN echo "2" > /v');
  });
});

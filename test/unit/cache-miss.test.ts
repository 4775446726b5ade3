import { describe, expect, it } from 'vitest';
import { explainMiss, redacted, stepSlot, type MissContext } from '../../src/builder/cache-miss.js';
import type { StepRecord } from '../../src/store/step-records.js';

const run = (over: Partial<StepRecord> & { material?: Record<string, unknown> } = {}): StepRecord => ({
  key: 'k1',
  parent: 'sha256:aaa',
  args: [['VERSION', '1']],
  ...over,
  material: {
    argv: ['/bin/sh', '-c', 'make'],
    env: ['PATH=/usr/bin', 'VERSION=1'],
    user: '',
    workdir: '/',
    network: 'default',
    mounts: [],
    createdBy: 'RUN |1 VERSION=1 /bin/sh -c make # buildkit',
    ...over.material,
  },
});

const line = (p: string, kind: string, detail: string) => `${p}\0${kind}\0${kind === 'd' ? 493 : 420}\0${detail}\n`;
const tree = (files: Record<string, string>) => ['src', ...Object.keys(files)].map((p) => (p === 'src' ? line(p, 'd', '') : line(p, 'f', files[p]!))).join('');

const ctx = (over: Partial<MissContext> = {}): MissContext => ({ onBase: false, base: 'debian:12', previousFiles: () => undefined, currentFiles: () => undefined, ...over });

describe('why a step missed the cache', () => {
  const cases: Array<[string, StepRecord | undefined, StepRecord, MissContext, string, string]> = [
    ['--no-cache comes first', run(), run({ key: 'k2' }), ctx({ noCache: '--no-cache' }), 'no-cache', '--no-cache'],
    ['no record of the step', undefined, run(), ctx(), 'first-build', 'no earlier build of this step'],
    ['the same key, its entry gone', run(), run(), ctx(), 'removed', 'its cached result is no longer in the store (pruned)'],
    ['another parent, on the base', run(), run({ key: 'k2', parent: 'sha256:bbb' }), ctx({ onBase: true }), 'base-image', 'the base image changed (FROM debian:12)'],
    ['another parent, after a step', run(), run({ key: 'k2', parent: 'sha256:bbb' }), ctx(), 'previous-step', 'the step before it changed'],
    [
      'a build arg',
      run(),
      run({ key: 'k2', args: [['VERSION', '2']], material: { env: ['PATH=/usr/bin', 'VERSION=2'], createdBy: 'RUN |1 VERSION=2 /bin/sh -c make # buildkit' } }),
      ctx(),
      'build-arg',
      'build-arg VERSION changed (1 -> 2)',
    ],
    [
      'a build arg set for the first time',
      run({ args: [] }),
      run({ key: 'k2', args: [['V', 'x']], material: { env: ['PATH=/usr/bin', 'V=x'] } }),
      ctx(),
      'build-arg',
      'build-arg V changed (unset -> x)',
    ],
    [
      'a secret-like build arg keeps its values to itself',
      run({ args: [['API_TOKEN', 'abc']] }),
      run({ key: 'k2', args: [['API_TOKEN', 'def']], material: { env: ['API_TOKEN=def'] } }),
      ctx(),
      'build-arg',
      'build-arg API_TOKEN changed (value hidden)',
    ],
    ['an ENV', run(), run({ key: 'k2', material: { env: ['PATH=/opt/bin:/usr/bin', 'VERSION=1'] } }), ctx(), 'env', 'ENV PATH changed'],
    ['two ENVs', run(), run({ key: 'k2', material: { env: ['PATH=/opt', 'VERSION=1', 'X=1'] } }), ctx(), 'env', 'ENV PATH changed (and 1 more)'],
    ['the command', run(), run({ key: 'k2', material: { argv: ['/bin/sh', '-c', 'make all'], createdBy: 'RUN make all' } }), ctx(), 'instruction', 'instruction text changed'],
    ['the user', run(), run({ key: 'k2', material: { user: 'app' } }), ctx(), 'option', 'USER changed'],
    ['the network', run(), run({ key: 'k2', material: { network: 'none' } }), ctx(), 'option', '--network changed'],
    [
      'a bind mount\'s files',
      run({ material: { mounts: [{ type: 'bind', target: '/src', content: 'aa' }] } }),
      run({ key: 'k2', material: { mounts: [{ type: 'bind', target: '/src', content: 'bb' }] } }),
      ctx(),
      'files',
      'the files mounted at /src changed',
    ],
    ['SOURCE_DATE_EPOCH', run({ epoch: 1 }), run({ key: 'k2', epoch: 2 }), ctx(), 'source-date-epoch', 'SOURCE_DATE_EPOCH changed'],
    [
      'COPY --from a stage that changed',
      run({ material: { srcs: ['/app'], sourcesKey: 'sha256:111' } }),
      run({ key: 'k2', material: { srcs: ['/app'], sourcesKey: 'sha256:222' } }),
      ctx(),
      'files',
      'the stage or image it copies from changed',
    ],
  ];
  it.each(cases)('%s', (_name, previous, current, context, cause, reason) => {
    const miss = explainMiss(previous, current, context);
    expect(miss.reason).toBe(reason);
    expect(miss.cause).toBe(cause);
  });

  it('names the build arg and its values as fields', () => {
    const miss = explainMiss(run(), run({ key: 'k2', args: [['VERSION', '2']], material: { env: ['VERSION=2'] } }), ctx());
    expect(miss).toEqual({ cause: 'build-arg', name: 'VERSION', before: '1', after: '2', reason: 'build-arg VERSION changed (1 -> 2)' });
  });

  it('an unused build arg does not hide which file changed', () => {
    const before = run({ material: { srcs: ['src'], sourcesKey: 'a' }, files: 'a' });
    const after = run({ key: 'k2', args: [['VERSION', '2']], material: { srcs: ['src'], sourcesKey: 'b' }, files: 'b' });
    const miss = explainMiss(before, after, ctx({ previousFiles: () => tree({ 'src/app.py': 'd1' }), currentFiles: () => tree({ 'src/app.py': 'd2' }) }));
    expect(miss.reason).toBe('src/app.py changed');
  });

  const fileCases: Array<[string, Record<string, string>, Record<string, string>, string, { changed: string[]; added: string[]; removed: string[]; total: number }]> = [
    ['one file changed', { 'src/a.py': '1', 'src/b.py': '1' }, { 'src/a.py': '2', 'src/b.py': '1' }, 'src/a.py changed', { changed: ['src/a.py'], added: [], removed: [], total: 1 }],
    [
      'changed, added and removed',
      { 'src/a.py': '1', 'src/b.py': '1', 'src/old.py': '1' },
      { 'src/a.py': '2', 'src/b.py': '1', 'src/new.py': '1' },
      'src/a.py changed (and 2 more files)',
      { changed: ['src/a.py'], added: ['src/new.py'], removed: ['src/old.py'], total: 3 },
    ],
    ['only added, in a new directory', { 'src/a.py': '1' }, { 'src/a.py': '1', 'src/lib': 'DIR', 'src/lib/x.py': '1' }, 'src/lib/x.py added', { changed: [], added: ['src/lib/x.py'], removed: [], total: 1 }],
    ['only removed', { 'src/a.py': '1', 'src/b.py': '1' }, { 'src/a.py': '1' }, 'src/b.py removed', { changed: [], added: [], removed: ['src/b.py'], total: 1 }],
  ];
  it.each(fileCases)('files: %s', (_name, before, after, reason, files) => {
    const list = (f: Record<string, string>) => ['src', ...Object.keys(f)].map((p) => (p === 'src' || f[p] === 'DIR' ? line(p, 'd', '') : line(p, 'f', f[p]!))).join('');
    const miss = explainMiss(
      run({ material: { sourcesKey: 'a' }, files: 'a' }),
      run({ key: 'k2', material: { sourcesKey: 'b' }, files: 'b' }),
      ctx({ previousFiles: () => list(before), currentFiles: () => list(after) }),
    );
    expect(miss).toEqual({ cause: 'files', reason, files });
  });

  it('names the context\'s own files as they are in it (COPY . . lists them as /name)', () => {
    const list = (d: string) => line('/', 'd', '') + line('/app.py', 'f', d) + line('./lib.py', 'f', 'x');
    const miss = explainMiss(run({ material: { sourcesKey: 'a' }, files: 'a' }), run({ key: 'k2', material: { sourcesKey: 'b' }, files: 'b' }), ctx({ previousFiles: () => list('1'), currentFiles: () => list('2') }));
    expect(miss.reason).toBe('app.py changed');
  });

  it('lists at most 20 paths of each kind, and counts them all', () => {
    const before: Record<string, string> = {};
    const after: Record<string, string> = {};
    for (let i = 0; i < 50; i++) {
      before[`src/f${i}`] = '1';
      after[`src/f${i}`] = '2';
    }
    const miss = explainMiss(run({ material: { sourcesKey: 'a' }, files: 'a' }), run({ key: 'k2', material: { sourcesKey: 'b' }, files: 'b' }), ctx({ previousFiles: () => tree(before), currentFiles: () => tree(after) }));
    expect(miss.reason).toBe('src/f0 changed (and 49 more files)');
    expect(miss.files!.changed).toHaveLength(20);
    expect(miss.files!.total).toBe(50);
  });

  it('a record keeps no secret-looking value, nor a proxy setting: their digests only, which still tell a change', () => {
    const material = {
      env: ['PATH=/usr/bin', 'API_TOKEN=s3cret', 'VERSION=1'],
      proxies: [['HTTP_PROXY', 'http://user:pw@proxy:3128']],
      createdBy: 'RUN |2 API_TOKEN=s3cret VERSION=1 /bin/sh -c make # buildkit',
    };
    const kept = redacted(material, [['API_TOKEN', 's3cret'], ['VERSION', '1']]);
    const text = JSON.stringify(kept);
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('user:pw');
    expect(kept.args[1]).toEqual(['VERSION', '1']);
    expect((kept.material.env as string[])[0]).toBe('PATH=/usr/bin');
    expect(kept.material.createdBy).toMatch(/^RUN \|2 API_TOKEN=sha256:[0-9a-f]{64} VERSION=1 \/bin\/sh -c make # buildkit$/);
    const other = redacted({ ...material, env: ['API_TOKEN=other'] }, [['API_TOKEN', 'other']]);
    expect(other.args[0]![1]).not.toBe(kept.args[0]![1]);
  });

  it('a slot is the same step of the same Dockerfile, and only that', () => {
    const base = { contextDir: '/ctx', dockerfile: '/ctx/Dockerfile', stage: '0', position: '2' };
    expect(stepSlot(base)).toBe(stepSlot({ ...base }));
    for (const other of [{ position: '3' }, { stage: 'build' }, { dockerfile: '/ctx/other.Dockerfile' }, { contextDir: '/ctx2' }, { platform: 'linux/arm64' }]) {
      expect(stepSlot({ ...base, ...other })).not.toBe(stepSlot(base));
    }
  });
});

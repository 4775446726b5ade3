// BuildKit's cache config as tsbuild writes and reads it, and the --cache-to / --cache-from flags.
import { describe, expect, it } from 'vitest';
import { makeCacheConfig, readCacheConfig, type CacheBlob } from '../../src/remote-cache/config.js';
import { parseCacheExport, parseCacheImport } from '../../src/remote-cache/spec.js';

const blob = (n: number): CacheBlob => ({
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as CacheBlob['digest'],
  size: n * 100,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  diffId: `sha256:${String(n + 5).repeat(64).slice(0, 64)}` as CacheBlob['diffId'],
});
const key = (c: string) => c.repeat(64);

describe('cache config', () => {
  const records = [
    { key: key('b'), chain: [blob(1), blob(2)], createdBy: 'RUN b', createdAt: '2026-01-01T00:00:00.000Z' },
    { key: key('a'), chain: [blob(1)], createdBy: 'RUN a' },
    { key: key('c'), chain: [blob(1), blob(2), blob(3)], createdBy: 'COPY c' },
  ];

  it('shares chain prefixes as parent links, writes a base layer\'s parent as -1, and sorts records', () => {
    const config = makeCacheConfig(records);
    expect(config.layers).toEqual([
      { blob: blob(1).digest, parent: -1 },
      { blob: blob(2).digest, parent: 0 },
      { blob: blob(3).digest, parent: 1 },
    ]);
    expect(config.records.map((r) => r.digest)).toEqual([`sha256:${key('a')}`, `sha256:${key('b')}`, `sha256:${key('c')}`]);
    expect(config.records[1]).toEqual({ digest: `sha256:${key('b')}`, layers: [{ layer: 1, createdAt: '2026-01-01T00:00:00.000Z' }], createdBy: 'RUN b' });
    expect(JSON.stringify(makeCacheConfig([...records].reverse()))).toBe(JSON.stringify(config));
  });

  it('reads back every record whose chain of blobs the manifest has', () => {
    const config = makeCacheConfig(records);
    const all = new Map([blob(1), blob(2), blob(3)].map((b) => [b.digest as string, b]));
    const read = readCacheConfig(config, all);
    expect([...read.values()].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([...records].sort((x, y) => (x.key < y.key ? -1 : 1)));
    const withoutTwo = readCacheConfig(config, new Map([blob(1), blob(3)].map((b) => [b.digest as string, b])));
    expect([...withoutTwo.keys()]).toEqual([key('a')]);
  });

  it('reads BuildKit\'s omitted parent 0, and survives cycles and junk', () => {
    const b = new Map([blob(1), blob(2)].map((x) => [x.digest as string, x]));
    const buildkit = { layers: [{ blob: blob(1).digest, parent: -1 }, { blob: blob(2).digest }], records: [{ digest: `sha256:${key('d')}`, layers: [{ layer: 1 }] }] };
    expect(readCacheConfig(buildkit, b).get(key('d'))!.chain).toEqual([blob(1), blob(2)]);
    const cycle = { layers: [{ blob: blob(1).digest, parent: 1 }, { blob: blob(2).digest, parent: 0 }], records: [{ digest: `sha256:${key('e')}`, layers: [{ layer: 1 }] }] };
    expect(readCacheConfig(cycle, b).size).toBe(0);
    const junk = { layers: [], records: [{ digest: 'nope', layers: [{ layer: 0 }] }, null] };
    expect(readCacheConfig(junk as never, b).size).toBe(0);
    expect(() => readCacheConfig({} as never, b)).toThrow(/cache config has no layers or records/);
  });
});

describe('--cache-to and --cache-from', () => {
  const to: Array<[string, unknown]> = [
    ['type=registry,ref=localhost:5000/app:cache', { type: 'registry', ref: 'localhost:5000/app:cache', mode: 'min', ignoreError: false }],
    ['type=registry,ref=r/app:cache,mode=max,ignore-error=true,oci-mediatypes=true', { type: 'registry', ref: 'r/app:cache', mode: 'max', ignoreError: true }],
    ['localhost:5000/app:cache', { type: 'registry', ref: 'localhost:5000/app:cache', mode: 'min', ignoreError: false }],
    ['type=local,dest=/ci/cache,mode=max', { type: 'local', dest: '/ci/cache', tag: 'latest', mode: 'max', ignoreError: false }],
    ['type=inline', { type: 'inline' }],
  ];
  it.each(to)('--cache-to %s', (value, expected) => expect(parseCacheExport(value)).toEqual(expected));

  const from: Array<[string, unknown]> = [
    ['type=registry,ref=r/app:cache', { type: 'registry', ref: 'r/app:cache' }],
    ['type=registry,ref=r:5000/app:cache,registry.insecure=true', { type: 'registry', ref: 'r:5000/app:cache', insecure: true }],
    ['r/app:cache', { type: 'registry', ref: 'r/app:cache' }],
    ['type=local,src=/ci/cache,tag=main', { type: 'local', src: '/ci/cache', tag: 'main' }],
    [`type=local,src=/c,digest=sha256:${'0'.repeat(64)}`, { type: 'local', src: '/c', tag: 'latest', digest: `sha256:${'0'.repeat(64)}` }],
  ];
  it.each(from)('--cache-from %s', (value, expected) => expect(parseCacheImport(value)).toEqual(expected));

  const bad: Array<[() => unknown, string]> = [
    [() => parseCacheExport('type=registry'), 'invalid --cache-to "type=registry": type=registry needs ref=REF'],
    [() => parseCacheExport('type=local'), 'invalid --cache-to "type=local": type=local needs dest=DIR'],
    [() => parseCacheExport('type=gha'), 'invalid --cache-to "type=gha": cache type "gha" is not supported (registry, local, inline)'],
    [() => parseCacheExport('type=registry,ref=x,mode=huge'), 'invalid --cache-to "type=registry,ref=x,mode=huge": mode must be min or max'],
    [() => parseCacheExport('ref=x'), 'invalid --cache-to "ref=x": type= is required (registry, local or inline)'],
    [() => parseCacheExport('type=registry,ref=x,colour=red'), 'invalid --cache-to "type=registry,ref=x,colour=red": unknown attribute "colour" for type=registry'],
    [() => parseCacheImport('type=local'), 'invalid --cache-from "type=local": type=local needs src=DIR'],
    [() => parseCacheImport('Bad/Ref'), 'invalid --cache-from ref: invalid reference format: "Bad/Ref": repository name must be lowercase'],
  ];
  it.each(bad)('refuses %#', (call, message) => expect(call).toThrow(message));
});

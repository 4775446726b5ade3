import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('COPY from the build context', () => {
  const root = tempDir('store-');
  let report: string;
  let hostMarker: string;

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    hostMarker = `tsbuild-escape-${process.pid}`;
    const ctx = context({
      'a.txt': 'hello\n',
      'dir/sub/b.txt': 'b\n',
      'dir/ignored.log': 'nope\n',
      'dir/keep.log': 'kept by an exception\n',
      'exec.sh': '#!/bin/sh\n',
      '.dockerignore': '**/*.log\n!dir/keep.log\n',
      Dockerfile: [
        'FROM busybox',
        `RUN ln -s /etc /etclink && ln -s ../../../../../../tmp/${hostMarker} /up`,
        'COPY a.txt /etclink/',
        'COPY a.txt /up/x.txt',
        'COPY dir /d',
        'COPY --chown=app:extra --chmod=750 exec.sh /opt/',
        'WORKDIR /w',
        'COPY a.txt rel.txt',
        'COPY a.txt dir/sub/b.txt /multi/',
        'RUN { ls -ln /etc/a.txt /opt/exec.sh; find /d /multi /w | sort; cat /tmp/*/x.txt; stat -c "%Y" /w/rel.txt; } > /report 2>&1',
      ].join('\n'),
    });
    chmodSync(path.join(ctx, 'exec.sh'), 0o755);
    utimesSync(path.join(ctx, 'a.txt'), 1_600_000_000, 1_600_000_000);
    const r = await ok(root, ['-q', ctx]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    report = readFileSync(path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff/report'), 'utf8');
  });

  it('follows a symlinked destination inside the image, never on the host', () => {
    expect(report).toMatch(/^-rw-r--r-- +1 0 +0 +6 .* \/etc\/a\.txt$/m);
    expect(report).toContain('hello\n'); // /up/x.txt landed in the image's /tmp/<marker>/
    expect(existsSync(`/tmp/${hostMarker}`)).toBe(false);
    expect(existsSync('/etc/a.txt')).toBe(false);
  });

  it('copies directory contents, honouring .dockerignore and its exceptions', () => {
    const found = report.split('\n').filter((l) => l.startsWith('/d') || l.startsWith('/multi') || l.startsWith('/w'));
    expect(found).toEqual(['/d', '/d/keep.log', '/d/sub', '/d/sub/b.txt', '/multi', '/multi/a.txt', '/multi/b.txt', '/w', '/w/rel.txt']);
  });

  it('applies --chown with names from the image and --chmod; keeps mtimes', () => {
    expect(report).toMatch(/^-rwxr-x--- +1 1000 +2000 .* \/opt\/exec\.sh$/m);
    expect(report).toMatch(/^1600000000$/m);
  });
});

describe.skipIf(lacks('root'))('FROM scratch', () => {
  it('builds an image whose only layer is what COPY adds', async () => {
    const root = tempDir('store-');
    const ctx = context({ Dockerfile: 'FROM scratch\nCOPY hello.txt /\nCMD ["/hello.txt"]\n', 'hello.txt': 'hi\n' });
    const r = await ok(root, ['-q', '-t', 'from-scratch', ctx]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    expect(image.Layers).toHaveLength(1);
    expect(image.Config).toEqual({ Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/hello.txt'], WorkingDir: '/' });
    expect(image.History.map((h: { created_by: string }) => h.created_by)).toEqual(['COPY hello.txt / # buildkit', 'CMD ["/hello.txt"]']);
    expect(image.Layers[0].ContentSize).toBe(3);
  });
});

describe.skipIf(lacks('root'))('hard links', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  /** The top layer's entries as GNU tar lists them: "path" or "path link to target". */
  async function topLayerEntries(image: string): Promise<string[]> {
    const dir = tempDir('saved-');
    await ok(root, ['save', image, '-o', path.join(dir, 'image.tar')]);
    execFileSync('tar', ['-xf', path.join(dir, 'image.tar'), '-C', dir]);
    const [manifest] = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    return execFileSync('tar', ['-tvf', path.join(dir, manifest.Layers.at(-1))], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('-') || l.startsWith('h'))
      .map((l) => l.replace(/^.* \d\d:\d\d /, ''));
  }

  it('stay one inode through COPY of the context, COPY --from a stage and ADD of an archive', async () => {
    const ctx = context({ Dockerfile: '', 'tree/a': 'a\n', 'tree/sub/c': 'c\n', 'other/x': 'x\n' });
    linkSync(path.join(ctx, 'tree/a'), path.join(ctx, 'tree/b'));
    linkSync(path.join(ctx, 'tree/a'), path.join(ctx, 'tree/sub/d'));
    linkSync(path.join(ctx, 'other/x'), path.join(ctx, 'other/y'));
    execFileSync('tar', ['-cf', path.join(ctx, 'arch.tar'), '-C', path.join(ctx, 'tree'), '.']); // GNU tar writes b and sub/d as links to a
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      [
        'FROM busybox AS stage',
        'RUN mkdir /made && echo m > /made/one && ln /made/one /made/two',
        'FROM busybox',
        'COPY tree /ctx/',
        'COPY --from=stage /made /from/',
        'ADD arch.tar /added/',
        'COPY other/x other/y /separate/',
        'RUN stat -c "%n %h %i" /ctx/a /ctx/b /ctx/sub/d /from/one /from/two /added/a /added/b /added/sub/d /separate/x /separate/y > /links',
      ].join('\n'),
    );
    const id = (await ok(root, ['-q', '-t', 'links', ctx])).stdout.trim();
    const [image] = JSON.parse((await ok(root, ['inspect', id])).stdout);
    const stats = readFileSync(path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff/links'), 'utf8').trim().split('\n').map((l) => l.split(' '));
    const inode = (p: string) => stats.find((s) => s[0] === p)!;
    for (const group of [['/ctx/a', '/ctx/b', '/ctx/sub/d'], ['/from/one', '/from/two'], ['/added/a', '/added/b', '/added/sub/d']]) {
      expect(group.map((p) => inode(p)[1])).toEqual(group.map(() => String(group.length)));
      expect(new Set(group.map((p) => inode(p)[2])).size).toBe(1);
    }
    // two sources of one COPY are two copies, as BuildKit copies each source on its own
    expect([inode('/separate/x')[1], inode('/separate/y')[1]]).toEqual(['1', '1']);
  });

  it('are hard-link entries in the COPY layer tar', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nCOPY . /x/\n', a: 'a\n' });
    linkSync(path.join(ctx, 'a'), path.join(ctx, 'b'));
    await ok(root, ['-q', '-t', 'ctxlinks', ctx]);
    expect(await topLayerEntries('ctxlinks')).toEqual(['x/Dockerfile', 'x/a', 'x/b link to x/a']);
  });
});

describe.skipIf(lacks('root') || !existsSync('/usr/sbin/setcap'))('xattrs', () => {
  it('COPY --from keeps a file capability, as BuildKit does', async () => {
    const root = tempDir('store-');
    const dir = tempDir('capbase-');
    const rootfs = path.join(dir, 'rootfs');
    execFileSync('mkdir', ['-p', rootfs]);
    execFileSync('tar', ['-C', rootfs, '-xf', busyboxRootfsTar()]);
    execFileSync('cp', ['/bin/busybox', path.join(rootfs, 'bin/pinger')]);
    execFileSync('/usr/sbin/setcap', ['cap_net_raw+ep', path.join(rootfs, 'bin/pinger')]);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', rootfs, '-cf', path.join(dir, 'base.tar'), '.']);
    await ok(root, ['import', path.join(dir, 'base.tar'), 'capbase']);
    const built = (await ok(root, ['build', '-q', context({ Dockerfile: 'FROM capbase AS src\nFROM capbase\nCOPY --from=src /bin/pinger /usr/bin/pinger2\nCOPY --from=src /bin/busybox /usr/bin/plain\n' })])).stdout.trim();
    const archive = path.join(dir, 'out.tar');
    await ok(root, ['save', built, '-o', archive]);
    const out = path.join(dir, 'out');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('tar', ['-xf', archive, '-C', out]);
    const [manifest] = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    // GNU tar lists each xattr under its entry as "  x: LENGTH NAME"
    const listing = (layer: string) => execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', path.join(out, layer)], { encoding: 'utf8' }).trim().split('\n').map((l) => l.replace(/^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+/, '').trim());
    expect(listing(manifest.Layers[1])).toEqual(['usr/', 'usr/bin/', 'usr/bin/pinger2', 'x: 20 security.capability']);
    expect(listing(manifest.Layers[2])).toEqual(['usr/', 'usr/bin/', 'usr/bin/plain']);
  });
});

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import { ErofsImage } from '../../src/fs/erofs-reader.js';
import { DirLayer, ErofsLayer, type LayerFiles } from '../../src/fs/rootfs-view.js';
import { applyLayer } from '../../src/layer/apply.js';
import { ErofsUnsupported, writeErofs } from '../../src/layer/erofs-writer.js';
import type { TarEntry } from '../../src/layer/tar-format.js';
import { readTar } from '../../src/layer/tar-reader.js';
import { native } from '../../src/native/index.js';
import { lacks } from '../helpers/env.js';
import { mixedBytes, tempDir } from '../helpers/fixtures.js';
import { craftTar, dir, file, type CraftedEntry } from '../helpers/tars.js';

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service+ep
const XATTRS = ['user.note', 'security.capability', 'trusted.overlay.opaque'];

const entry = (p: string, type: TarEntry['type'], extra: Partial<TarEntry> = {}): CraftedEntry => ({ path: p, type, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000, ...extra });
const owned = (e: CraftedEntry, uid: number, gid: number, mode: number, mtime: number): CraftedEntry => ({ ...e, uid, gid, mode, mtime });

/** Layers as tars, each with what is tricky to lay out: the image must show what extraction makes. */
const CASES: Array<[string, CraftedEntry[]]> = [
  [
    'files, modes, owners and times',
    [
      owned(dir('etc'), 0, 0, 0o755, 1_500_000_000),
      owned(file('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'), 0, 0, 0o644, 1_500_000_001),
      owned(dir('home'), 0, 0, 0o755, 1_500_000_002),
      owned(dir('home/app'), 1000, 1000, 0o700, 1_500_000_003),
      owned(file('home/app/run', '#!/bin/sh\n'), 1000, 1000, 0o4755, 1_500_000_004),
      owned(file('home/app/big-ids'), 3_000_000, 3_000_001, 0o600, 1_500_000_005),
      owned(dir('tmp'), 0, 0, 0o1777, 1_500_000_006),
    ],
  ],
  [
    'whiteouts and an opaque directory',
    [dir('a'), file('a/.wh.gone', ''), file('.wh.top', ''), dir('o'), file('o/.wh..wh..opq', ''), file('o/new', 'n')],
  ],
  [
    'hard links, symlinks, devices and a fifo',
    [
      dir('bin'),
      owned(file('bin/tool', 'binary'), 0, 0, 0o755, 5),
      entry('bin/tool2', 'hardlink', { linkname: 'bin/tool' }),
      dir('lib'),
      entry('lib/tool3', 'hardlink', { linkname: 'bin/tool' }),
      entry('bin/abs', 'symlink', { linkname: '/etc/passwd', mode: 0o777 }),
      entry('bin/rel', 'symlink', { linkname: '../lib/tool3', mode: 0o777 }),
      entry('bin/dangling', 'symlink', { linkname: 'nowhere/at/all', mode: 0o777 }),
      dir('dev'),
      entry('dev/null', 'char', { devmajor: 1, devminor: 3, mode: 0o666 }),
      entry('dev/sda', 'block', { devmajor: 8, devminor: 300, mode: 0o660 }),
      entry('dev/fifo', 'fifo', { mode: 0o620 }),
    ],
  ],
  [
    'the later of one path twice, a replaced directory and file',
    [
      dir('d', 0o700), file('d/x', 'first'), file('d/x', 'second'),
      dir('gone'), file('gone/inside', 'x'), file('gone', 'a file where a directory was'),
      file('was-file', 'f'), dir('was-file'), file('was-file/in', 'now a directory'),
      dir('d', 0o711),
      file('linked', 'old'), entry('link2', 'hardlink', { linkname: 'linked' }), file('linked', 'replaced'),
    ],
  ],
  [
    'big, empty and block-sized files, xattrs',
    [
      dir('data'),
      file('data/empty', ''),
      file('data/block', mixedBytes(4096)),
      file('data/just-over', mixedBytes(4033)),
      file('data/just-under', mixedBytes(4032)),
      file('data/big', mixedBytes(300_000)),
      { ...file('data/noted', 'with xattrs'), xattrs: new Map([['user.note', Buffer.from('hello')], ['security.capability', CAP]]) },
      { ...dir('data/dir-noted'), xattrs: new Map([['user.note', Buffer.from('dir')]]) },
      { ...file('data/big-noted', mixedBytes(5000)), xattrs: new Map([['user.note', Buffer.alloc(3000, 1)]]) },
    ],
  ],
  [
    'directories of many entries, names in byte order',
    [
      dir('many'),
      ...Array.from({ length: 1500 }, (_, i) => file(`many/${'n'.repeat(40)}-${String(i).padStart(5, '0')}`, `${i}`)),
      dir('names'),
      ...['-dash', '+plus', '.hidden', '..dots', 'Zed', 'a', 'aa', 'é-accent', '~tilde', ' space', 'x'.repeat(255)].map((n) => file(`names/${n}`, n)),
      dir('dirs'),
      ...Array.from({ length: 300 }, (_, i) => dir(`dirs/sub-${i}`)),
    ],
  ],
  ['directories the tar does not list (no layer below)', [file('p/q/r', 'deep'), dir('p/q/s')]],
];

interface Seen {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: number;
  size?: number;
  nlink?: number;
  rdev?: number;
  content?: string;
  opaque?: boolean;
}

/** Everything a layer's files show, walked through LayerFiles (a directory, or an image read with pread). */
function walk(layer: LayerFiles, unlisted: ReadonlySet<string>, comps: string[] = [], out: Seen[] = []): Seen[] {
  for (const name of layer.readdir(comps).sort()) {
    const at = [...comps, name];
    const st = layer.lstat(at)!;
    const p = at.join('/');
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'fifo';
    const seen: Seen = { path: p, type, mode: st.mode, uid: st.uid, gid: st.gid };
    if (!unlisted.has(p)) seen.mtime = st.mtimeMs;
    if (type !== 'dir') Object.assign(seen, { size: st.size, nlink: st.nlink, rdev: st.rdev });
    if (type === 'file' || type === 'symlink') seen.content = createHash('sha256').update(layer.content(at)).digest('hex');
    if (type === 'dir') seen.opaque = layer.opaque(at);
    out.push(seen);
    if (type === 'dir') walk(layer, unlisted, at, out);
  }
  return out;
}

/** The xattrs tsbuild keeps, of every entry below a host directory (a mount of the image, or the extraction). */
function xattrsUnder(root: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  const visit = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const p = path.join(rel, name);
      const host = path.join(root, p);
      if (lstatSync(host).isSymbolicLink()) continue;
      for (const x of XATTRS) {
        const v = native().getXattr(host, x);
        if (v) (out[p] ??= {})[x] = v.toString('hex');
      }
      if (lstatSync(host).isDirectory()) visit(p);
    }
  };
  visit('');
  return out;
}

const fromTar = (tar: Buffer) => readTar(Readable.from([tar]));

async function imageOf(tar: Buffer, hasParent = false): Promise<string> {
  const file = path.join(tempDir('erofs-'), 'layer.erofs');
  await writeErofs(fromTar(tar), file, hasParent);
  return file;
}

const opened: ErofsImage[] = [];
const mounted: string[] = [];
afterEach(() => {
  for (const i of opened.splice(0)) i.close();
  for (const m of mounted.splice(0)) execFileSync('umount', [m]);
});

describe.skipIf(lacks('root'))('layers as EROFS images', () => {
  for (const [name, entries] of CASES) {
    it(`${name}: the image, mounted and read, shows what extraction makes`, async () => {
      const tar = craftTar(entries);
      const extracted = tempDir('extracted-');
      await applyLayer(fromTar(tar), extracted);
      const file = await imageOf(tar);
      // directories the tar does not list get the time of extraction on disk, 0 in the image
      const unlisted = new Set(name.includes('does not list') ? ['p', 'p/q'] : []);
      const expected = walk(new DirLayer(extracted), unlisted);

      const image = new ErofsImage(file);
      opened.push(image);
      expect(walk(new ErofsLayer(image), unlisted)).toEqual(expected);

      const at = tempDir('mnt-');
      execFileSync('mount', ['-t', 'erofs', '-o', 'ro', file, at]);
      mounted.push(at);
      expect(walk(new DirLayer(at), unlisted)).toEqual(expected);
      expect(xattrsUnder(at)).toEqual(xattrsUnder(extracted));
      if (name.startsWith('hard links')) {
        expect(lstatSync(path.join(at, 'bin/tool')).ino).toBe(lstatSync(path.join(at, 'lib/tool3')).ino);
        expect(readlinkSync(path.join(at, 'bin/rel'))).toBe('../lib/tool3');
      }
      if (name.startsWith('directories of many')) {
        expect(readdirSync(path.join(at, 'many'))).toHaveLength(1500);
        expect(readFileSync(path.join(at, 'many', `${'n'.repeat(40)}-01499`), 'utf8')).toBe('1499');
      }
    });
  }

  it('refuses entries that climb out with .., as extraction does', async () => {
    await expect(imageOf(craftTar([file('a/../../etc/passwd', 'x')]))).rejects.toThrow(IntegrityError);
    await expect(imageOf(craftTar([file('a', 'x'), file('a/b', 'below a file')]))).rejects.toThrow(/parent is not a directory/);
    await expect(imageOf(craftTar([file('a', 'x'), entry('b', 'hardlink', { linkname: 'missing' })]))).rejects.toThrow(/not in the layer/);
  });

  it('leaves to extraction what only a directory gives exactly', async () => {
    const cases: CraftedEntry[][] = [
      [dir('real'), entry('via', 'symlink', { linkname: 'real' }), file('via/f', 'through a symlinked parent')],
      [{ ...file('odd', 'x'), xattrs: new Map([['com.example.attr', Buffer.from('1')]]) }],
      [dir('d'), entry('l', 'hardlink', { linkname: 'd' })],
      [{ ...file('big-owner', 'x'), uid: 2 ** 33 }],
      [{ ...file('many-xattrs', 'x'), xattrs: new Map([['user.a', Buffer.alloc(3000)], ['user.b', Buffer.alloc(2000)]]) }],
      [entry('dev/odd', 'char', { devmajor: 5000, devminor: 1 })],
    ];
    for (const entries of cases) await expect(imageOf(craftTar(entries))).rejects.toThrow(ErofsUnsupported);
    // over layers below, a directory the tar does not list takes their attributes: extraction knows them
    await expect(imageOf(craftTar([file('home/u/f', 'x')]), true)).rejects.toThrow(ErofsUnsupported);
    await expect(imageOf(craftTar([dir('home'), dir('home/u'), file('home/u/f', 'x')]), true)).resolves.toBeTypeOf('string');
  });

  it('is the same image byte for byte whenever it is written', async () => {
    const tar = craftTar(CASES.flatMap(([, e]) => e).filter((e) => !e.path.startsWith('p/')));
    const [a, b] = [await imageOf(tar), await imageOf(tar)];
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });
});

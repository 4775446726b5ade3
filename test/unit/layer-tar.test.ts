import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyLayer } from '../../src/layer/apply.js';
import { writeLayerTar } from '../../src/layer/diff.js';
import type { TarEntry } from '../../src/layer/tar-format.js';
import { readTar } from '../../src/layer/tar-reader.js';
import { native } from '../../src/native/index.js';
import { lacks } from '../helpers/env.js';
import { tempDir } from '../helpers/fixtures.js';
import { craftTar, dir, file, type CraftedEntry } from '../helpers/tars.js';

const S_IFCHR = 0o020000;
const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service+ep
const LONG = `deep/${'d'.repeat(90)}/${'f'.repeat(120)}`;

class Collect {
  chunks: Buffer[] = [];
  write(b: Buffer) {
    this.chunks.push(b);
  }
  get bytes() {
    return Buffer.concat(this.chunks);
  }
}

/** An upper dir in overlay form, built in code: what a RUN step leaves behind. */
function overlayUpper(): string {
  const dir = tempDir('upper-');
  mkdirSync(path.join(dir, 'etc'));
  writeFileSync(path.join(dir, 'etc/app.conf'), 'x=1\n');
  writeFileSync(path.join(dir, 'bin-tool'), 'binary');
  chmodSync(path.join(dir, 'bin-tool'), 0o4755);
  native().setXattr(path.join(dir, 'bin-tool'), 'security.capability', CAP);
  linkSync(path.join(dir, 'bin-tool'), path.join(dir, 'bin-tool-link'));
  symlinkSync('/etc/app.conf', path.join(dir, 'abs-link'));
  native().mknod(path.join(dir, 'etc/deleted'), S_IFCHR | 0o600, 0, 0); // whiteout
  mkdirSync(path.join(dir, 'opaque'));
  native().setXattr(path.join(dir, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'));
  writeFileSync(path.join(dir, 'opaque/new'), 'n');
  mkdirSync(path.join(dir, path.dirname(LONG)), { recursive: true });
  writeFileSync(path.join(dir, LONG), 'long');
  writeFileSync(path.join(dir, 'bigid'), '');
  lchownSync(path.join(dir, 'bigid'), 3_000_000, 3_000_001);
  for (const f of ['etc/app.conf', 'bin-tool', 'opaque/new', LONG, 'bigid']) utimesSync(path.join(dir, f), 1_700_000_000, 1_700_000_000);
  return dir;
}

async function entriesOf(bytes: Buffer) {
  const out: Array<Omit<TarEntry, 'xattrs'> & { xattrs?: Record<string, string>; content: string }> = [];
  for await (const e of readTar(Readable.from([bytes]))) {
    let content = '';
    for await (const c of e.body()) content += c.toString();
    const { xattrs, ...rest } = e;
    delete (rest as { body?: unknown }).body;
    out.push({ ...rest, content, ...(xattrs ? { xattrs: Object.fromEntries([...xattrs].map(([k, v]) => [k, v.toString('hex')])) } : {}) });
  }
  return out;
}

describe.skipIf(lacks('root'))('layer tars from overlay upper dirs', () => {
  let upper: string;
  let tar: Buffer;
  let diffId: string;

  beforeAll(async () => {
    upper = overlayUpper();
    const sink = new Collect();
    diffId = (await writeLayerTar(upper, sink)).diffId;
    tar = sink.bytes;
  });

  it('computes the diffID over exactly the bytes written', () => {
    expect(diffId).toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
  });

  it('turns whiteout devices into .wh. files and opaque dirs into .wh..wh..opq, sorted', async () => {
    const names = (await entriesOf(tar)).map((e) => e.path);
    expect(names).toEqual([
      'abs-link', 'bigid', 'bin-tool', 'bin-tool-link', 'deep', `deep/${'d'.repeat(90)}`, LONG,
      'etc', 'etc/.wh.deleted', 'etc/app.conf', 'opaque', 'opaque/.wh..wh..opq', 'opaque/new',
    ]);
  });

  it('keeps hard links, symlink targets, setuid, xattrs, big ids and long names; no user names', async () => {
    const byPath = new Map((await entriesOf(tar)).map((e) => [e.path, e]));
    expect(byPath.get('bin-tool')).toMatchObject({ type: 'file', mode: 0o4755, xattrs: { 'security.capability': CAP.toString('hex') }, content: 'binary' });
    expect(byPath.get('bin-tool-link')).toMatchObject({ type: 'hardlink', linkname: 'bin-tool' });
    expect(byPath.get('abs-link')).toMatchObject({ type: 'symlink', linkname: '/etc/app.conf' });
    expect(byPath.get('bigid')).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    expect(byPath.get(LONG)).toMatchObject({ content: 'long', mtime: 1_700_000_000 });
    expect(byPath.get('opaque')!.xattrs).toBeUndefined(); // overlay's own xattrs stay out
    // ustar uname/gname fields (offsets 265 and 297) are empty in every header
    expect(tar.subarray(265, 265 + 64).every((b) => b === 0)).toBe(true);
  });

  it('is read the same by GNU tar', () => {
    const file = path.join(tempDir(), 'layer.tar');
    writeFileSync(file, tar);
    const listing = execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-tvf', file], { encoding: 'utf8' });
    expect(listing).toContain('etc/.wh.deleted');
    expect(listing).toContain(LONG);
    expect(listing).toMatch(/hrwsr-xr-x\*? 0\/0 +0 .* bin-tool-link link to bin-tool/);
    expect(listing).toMatch(/3000000\/3000001/);
  });

  it('round-trips: applying the tar gives a directory that archives to the same diffID', async () => {
    const dest = tempDir('applied-');
    await applyLayer(readTar(Readable.from([tar])), dest);
    expect(lstatSync(path.join(dest, 'etc/deleted')).isCharacterDevice()).toBe(true);
    expect(native().getXattr(path.join(dest, 'opaque'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(native().getXattr(path.join(dest, 'bin-tool'), 'security.capability')).toEqual(CAP);
    expect(lstatSync(path.join(dest, 'bin-tool')).ino).toBe(lstatSync(path.join(dest, 'bin-tool-link')).ino);
    expect((await writeLayerTar(dest)).diffId).toBe(diffId);
  });
});

describe.skipIf(lacks('root'))('layer extraction keeps what GNU tar writes', () => {

  it('reads device numbers from GNU-format headers (not whiteouts)', async () => {
    const src = tempDir('dev-');
    native().mknod(path.join(src, 'null'), S_IFCHR | 0o666, 1, 3);
    const file = path.join(tempDir(), 'gnu.tar');
    execFileSync('tar', ['--format=gnu', '-C', src, '-cf', file, 'null']);
    const dest = tempDir('applied-');
    await applyLayer(readTar(Readable.from([readFileSync(file)])), dest);
    expect(lstatSync(path.join(dest, 'null')).rdev).toBe(lstatSync('/dev/null').rdev);
  });

  it('gives directories a layer does not list the attributes the layers below have', async () => {
    const dest = tempDir('applied-');
    await applyLayer(readTar(Readable.from([craftTar([file('home/u/f', 'x')])])), dest, (p) => (p === '/home/u' ? { mode: 0o700, uid: 1000, gid: 1000, mtime: 5 } : undefined));
    expect(lstatSync(path.join(dest, 'home/u'))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(lstatSync(path.join(dest, 'home/u')).mode & 0o777).toBe(0o700);
    expect(lstatSync(path.join(dest, 'home')).mode & 0o777).toBe(0o755);
  });
});

describe.skipIf(lacks('root'))('layer extraction of many files, created together on threads', () => {
  const apply = async (entries: CraftedEntry[]) => {
    const dest = tempDir('batch-');
    await applyLayer(readTar(Readable.from([craftTar(entries)])), dest);
    return dest;
  };

  it('gives what applying the entries one by one gives: the later of one path twice, a replaced directory, owners, modes, times', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => ({ ...file(`d${i % 3}/f${i}`, `content ${i}`), uid: i % 7, gid: i % 5, mode: 0o600 + (i % 64), mtime: 1000 + i }));
    const dest = await apply([
      dir('d0'), dir('d1'), dir('d2', 0o500),
      ...many,
      file('d1/f1', 'the later one'),
      dir('gone'), file('gone/inside', 'x'),
      file('gone', 'a file where a directory was'),
      dir('d0', 0o711),
    ]);
    for (const [i, e] of many.entries()) {
      if (i === 1) continue;
      const st = lstatSync(path.join(dest, e.path));
      expect([readFileSync(path.join(dest, e.path), 'utf8'), st.uid, st.gid, st.mode & 0o7777, st.mtimeMs]).toEqual([e.content, e.uid, e.gid, e.mode, e.mtime * 1000]);
    }
    expect(readFileSync(path.join(dest, 'd1/f1'), 'utf8')).toBe('the later one');
    expect(readFileSync(path.join(dest, 'gone'), 'utf8')).toBe('a file where a directory was');
    expect(lstatSync(path.join(dest, 'gone')).mtimeMs).toBe(0); // its own time, not the replaced directory's
    expect(lstatSync(path.join(dest, 'd2')).mode & 0o777).toBe(0o500);
    expect(lstatSync(path.join(dest, 'd0')).mode & 0o777).toBe(0o711);
    expect(lstatSync(path.join(dest, 'd0')).mtimeMs).toBe(7000); // directory times last
  });

  it('refuses a file below a file of the same batch, as one by one', async () => {
    await expect(apply([file('a', 'file'), file('a/b', 'below a file')])).rejects.toThrow(/parent is not a directory/);
  });
});

describe.skipIf(lacks('root'))('layer extraction never writes outside its directory', () => {

  it('refuses entries that climb out with ..', async () => {
    const dest = tempDir('evil-');
    await expect(applyLayer(readTar(Readable.from([craftTar([file('a/../../escaped')])])), dest)).rejects.toThrow(/contains "\.\.": refused/);
    expect(existsSync(path.join(path.dirname(dest), 'escaped'))).toBe(false);
  });

  it('resolves a symlinked parent inside the layer, not on the host', async () => {
    const dest = tempDir('evil-');
    const outside = tempDir('victim-');
    const tar = craftTar([
      { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: outside },
      file('link/pwned', 'owned'),
    ]);
    await applyLayer(readTar(Readable.from([tar])), dest);
    expect(existsSync(path.join(outside, 'pwned'))).toBe(false);
    expect(readFileSync(path.join(dest, outside, 'pwned'), 'utf8')).toBe('owned');
  });

  it('refuses hard links to files outside the layer', async () => {
    const dest = tempDir('evil-');
    const tar = craftTar([{ path: 'h', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '../../etc/passwd' }]);
    await expect(applyLayer(readTar(Readable.from([tar])), dest)).rejects.toThrow(/contains "\.\.": refused/);
  });

  it('never replaces the layer directory itself (an entry "x/.." naming it)', async () => {
    const dest = tempDir('evil-');
    const outside = tempDir('victim-');
    const tar = craftTar([
      { path: 'x/..', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: outside },
      file('sub/pwned', 'owned'),
    ]);
    await expect(applyLayer(readTar(Readable.from([tar])), dest)).rejects.toThrow(/refused/);
    expect(existsSync(path.join(outside, 'sub'))).toBe(false);
    expect(lstatSync(dest).isDirectory()).toBe(true);
  });

  it.each(['.wh.', '.wh..', '.wh...'])('refuses the whiteout name %j', async (name) => {
    const dest = tempDir('evil-');
    mkdirSync(path.join(dest, 'keep'));
    await expect(applyLayer(readTar(Readable.from([craftTar([file(`keep/${name}`, '')])])), dest)).rejects.toThrow();
    expect(lstatSync(path.join(dest, 'keep')).isDirectory()).toBe(true);
  });

  it('ignores path records of a global PAX header', async () => {
    const body = Buffer.from('20 path=evil-global\n');
    const header = Buffer.alloc(512);
    const { Header } = await import('tar');
    new Header({ path: 'pax_global_header', mode: 0o644, size: body.length, type: 'GlobalExtendedHeader' as never, mtime: new Date(0) }).encode(header);
    const rest = craftTar([file('a', '1'), file('b', '2')]);
    const tar = Buffer.concat([header, body, Buffer.alloc(512 - body.length), rest]);
    const names: string[] = [];
    for await (const e of readTar(Readable.from([tar]))) names.push(e.path);
    expect(names).toEqual(['a', 'b']);
  });

  it('rejects a truncated archive', async () => {
    const tar = craftTar([file('a', 'x'.repeat(2000))]).subarray(0, 1100);
    await expect(applyLayer(readTar(Readable.from([tar])), tempDir())).rejects.toThrow(/truncated/);
  });
});

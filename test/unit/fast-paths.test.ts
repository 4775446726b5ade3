// The fast paths for many small files give exactly what the general paths give.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Header } from 'tar/header';
import { describe, expect, it } from 'vitest';
import { scanDir, scanDirs } from '../../src/fs/scan-dir.js';
import { decodeHeader, encodeHeader, encodeWithPax, type EntryType, type TarEntry } from '../../src/layer/tar-format.js';
import { native } from '../../src/native/index.js';
import { tempDir } from '../helpers/fixtures.js';

/** A small deterministic generator: the same table on every run. */
function prng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

const TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-/é';

function entries(): TarEntry[] {
  const r = prng(7);
  const name = (len: number) => Array.from({ length: len }, () => NAME_CHARS[r(NAME_CHARS.length)]).join('').replace(/\/+/g, '/').replace(/^\/|\/$/g, 'x');
  const out: TarEntry[] = [];
  for (let i = 0; i < 3000; i++) {
    const type = TYPES[r(TYPES.length)]!;
    out.push({
      path: name(1 + r(i % 10 === 0 ? 180 : 98)),
      type,
      mode: r(0o10000),
      uid: [0, 1000, 65534, 0o7777777, 0o10000000, 3_000_000][r(6)]!,
      gid: [0, 1000, 0o7777777, 0o10000000][r(4)]!,
      size: type === 'file' ? [0, 1, 511, 512, 0o77777777777, 0o100000000000][r(6)]! : 0,
      mtime: [0, 1_700_000_000, 0o77777777777, 0o100000000000, -1][r(5)]!,
      ...(type === 'symlink' || type === 'hardlink' ? { linkname: name(1 + r(i % 7 === 0 ? 130 : 99)) } : {}),
      ...(type === 'char' || type === 'block' ? { devmajor: r(300), devminor: [0, 1, 0o7777777, 0o10000000][r(4)]! } : {}),
      ...(i % 50 === 0 ? { xattrs: new Map([['user.k', Buffer.from('v')]]) } : {}),
    });
  }
  // the edges of the fast path: names of 99 and 100 bytes, a 100-byte link, multi-byte names
  out.push({ path: 'n'.repeat(99), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 1 });
  out.push({ path: 'n'.repeat(100), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 1 });
  out.push({ path: 'd'.repeat(98), type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1 });
  out.push({ path: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1, linkname: 't'.repeat(100) });
  out.push({ path: 'é'.repeat(49), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1 });
  out.push({ path: 'é'.repeat(50), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1 });
  return out;
}

describe('tar headers', () => {
  it('encodes every entry byte for byte as the general (node-tar) path does', () => {
    let fast = 0;
    for (const e of entries()) {
      const general = encodeWithPax(e);
      expect(encodeHeader(e).equals(general), `${e.type} ${e.path}`).toBe(true);
      if (general.length === 512) fast++;
    }
    expect(fast).toBeGreaterThan(1000); // the table exercises the fast path, not only the fallback
  });

  it('decodes what node-tar decodes, including ustar prefixes and base-256 numbers', () => {
    for (const e of entries()) {
      if (e.xattrs) continue;
      const block = encodeHeader(e).subarray(-512); // the ustar block (after any PAX header)
      const ours = decodeHeader(block)!;
      const theirs = new Header(block);
      expect(ours.checksumOk).toBe(true);
      expect(theirs.cksumValid).toBe(true);
      expect({ path: ours.path, mode: ours.mode, uid: ours.uid, gid: ours.gid, size: ours.size, mtime: ours.mtime, linkname: ours.linkname }).toEqual({
        path: theirs.path,
        mode: (theirs.mode ?? 0) & 0o7777,
        uid: theirs.uid,
        gid: theirs.gid,
        size: theirs.size,
        mtime: Math.floor(theirs.mtime!.getTime() / 1000),
        linkname: theirs.linkpath ?? '',
      });
    }
  });

  it('reads GNU tar headers (long names split into the ustar prefix, old checksums) and refuses a bad checksum', () => {
    const dir = tempDir('gnu-');
    const long = `${'p'.repeat(120)}/${'f'.repeat(60)}`;
    mkdirSync(path.join(dir, 'src', path.dirname(long)), { recursive: true });
    writeFileSync(path.join(dir, 'src', long), 'x');
    const tar = execFileSync('tar', ['-C', path.join(dir, 'src'), '--format=ustar', '--owner=0', '--group=0', '-cf', '-', long]);
    const h = decodeHeader(tar.subarray(0, 512))!;
    expect(h.path).toBe(long);
    expect(h.checksumOk).toBe(true);
    const signed = Buffer.from(tar.subarray(0, 512));
    signed[200] = 0xe9; // a byte above 127 in the link name: old tars summed bytes as signed
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : signed[i]! > 127 ? signed[i]! - 256 : signed[i]!;
    signed.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    expect(decodeHeader(signed)!.checksumOk).toBe(true);
    signed[0] ^= 1;
    expect(decodeHeader(signed)!.checksumOk).toBe(false);
    expect(decodeHeader(Buffer.alloc(512))).toBeNull();
  });
});

describe('native batch calls', () => {
  it('scanDir gives each entry what lstat gives', () => {
    const dir = tempDir('scan-');
    writeFileSync(path.join(dir, 'f'), 'abc');
    mkdirSync(path.join(dir, 'd'));
    symlinkSync('/etc/passwd', path.join(dir, 'l'));
    const { real, entries: scanned } = scanDir(dir);
    expect(real).toBe(dir);
    expect([...scanned.keys()].sort()).toEqual(['d', 'f', 'l']);
    for (const name of ['d', 'f', 'l']) {
      const st = lstatSync(path.join(dir, name));
      const s = scanned.get(name)!;
      for (const k of ['mode', 'uid', 'gid', 'size', 'mtimeMs', 'ctimeMs', 'ino', 'dev', 'nlink'] as const) expect(s[k], `${name} ${k}`).toBe(st[k]);
      expect([s.isDirectory(), s.isFile(), s.isSymbolicLink()]).toEqual([st.isDirectory(), st.isFile(), st.isSymbolicLink()]);
    }
    expect(() => scanDir(path.join(dir, 'l'))).toThrow(/scandir/); // a symlink is not followed
  });

  it('scanDirs scans on several threads what scanDir scans one by one, and gives each failure as its Error', () => {
    const dir = tempDir('scans-');
    const dirs = Array.from({ length: 9 }, (_, i) => path.join(dir, `d${i}`));
    for (const [i, d] of dirs.entries()) {
      mkdirSync(d);
      for (let j = 0; j < i * 50; j++) writeFileSync(path.join(d, `f${j}`), 'x'.repeat(j));
    }
    const scans = scanDirs([...dirs, path.join(dir, 'missing')]);
    expect(scans).toHaveLength(10);
    for (const [i, d] of dirs.entries()) {
      const one = scanDir(d);
      const many = scans[i] as Exclude<(typeof scans)[number], Error>;
      expect(many.real).toBe(one.real);
      expect([...many.entries].map(([n, st]) => [n, st.size, st.ino])).toEqual([...one.entries].map(([n, st]) => [n, st.size, st.ino]));
    }
    expect(scans[9]).toBeInstanceOf(Error);
    expect((scans[9] as Error).message).toMatch(/scandir .*missing: No such file/);
  });

  it('readFileInto reads a planned file, and refuses one swapped, grown or reached through a symlink', () => {
    const dir = tempDir('readinto-');
    mkdirSync(path.join(dir, 'ctx/sub'), { recursive: true });
    writeFileSync(path.join(dir, 'ctx/sub/f'), 'hello');
    writeFileSync(path.join(dir, 'secret'), 'host!');
    const st = lstatSync(path.join(dir, 'ctx/sub/f'));
    const root = openSync(path.join(dir, 'ctx'), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const buf = Buffer.alloc(16);
      expect(native().readFileInto(root, 'sub/f', st.dev, st.ino, 5, buf, 3)).toBe(true);
      expect(buf.subarray(3, 8).toString()).toBe('hello');
      expect(native().readFileInto(root, 'sub/f', st.dev, st.ino, 6, buf, 0)).toBe(false); // not the size planned
      // the directory swapped for a symlink to the host: the same name now leads outside
      renameSync(path.join(dir, 'ctx/sub'), path.join(dir, 'ctx/sub.old'));
      symlinkSync(dir, path.join(dir, 'ctx/sub'));
      expect(native().readFileInto(root, 'sub/secret', -1, -1, 5, buf, 0)).toBe(false);
      expect(native().readFileInto(root, '../secret', -1, -1, 5, buf, 0)).toBe(false);
      expect(() => native().readFileInto(root, 'sub.old/f', -1, -1, 17, buf, 0)).toThrow(/does not fit/);
    } finally {
      closeSync(root);
    }
    expect(readFileSync(path.join(dir, 'secret'), 'utf8')).toBe('host!');
  });

  it('hashFiles hashes planned files on threads, keeps the contents asked for, and refuses one swapped, shrunk or reached through a symlink', () => {
    const dir = tempDir('hashfiles-');
    mkdirSync(path.join(dir, 'ctx/sub'), { recursive: true });
    const names = Array.from({ length: 40 }, (_, i) => `sub/f${i}`);
    for (const [i, n] of names.entries()) writeFileSync(path.join(dir, 'ctx', n), 'x'.repeat(i * 37));
    writeFileSync(path.join(dir, 'secret'), 'host!');
    const plan = [...names, 'sub/gone', 'link/secret', '../secret'];
    const stats = names.map((n) => lstatSync(path.join(dir, 'ctx', n)));
    const expect3 = new Float64Array(3 * plan.length).fill(-1);
    stats.forEach((st, i) => expect3.set([st.dev, st.ino, st.size], 3 * i));
    expect3.set([stats[0]!.dev, 1, 0], 3 * names.length); // a file planned but gone
    symlinkSync(dir, path.join(dir, 'ctx/link'));
    const offsets = new Float64Array(plan.length).fill(-1);
    let kept = 0;
    for (let i = 0; i < names.length; i += 3) {
      offsets[i] = kept;
      kept += stats[i]!.size;
    }
    // one file shrinks after it was planned: it is not the file planned any more
    writeFileSync(path.join(dir, 'ctx/sub/f5'), 'short');
    const contents = Buffer.alloc(kept);
    const digests = Buffer.alloc(32 * plan.length);
    const ok = new Uint8Array(plan.length);
    const errs = new Int32Array(plan.length);
    const root = openSync(path.join(dir, 'ctx'), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      native().hashFiles(root, plan.map((p) => `${p}\0`).join(''), expect3, offsets, contents, digests, ok, errs, 3);
    } finally {
      closeSync(root);
    }
    for (const [i, n] of names.entries()) {
      if (i === 5) {
        expect(ok[i]).toBe(0);
        continue;
      }
      const data = readFileSync(path.join(dir, 'ctx', n));
      expect(ok[i], n).toBe(1);
      expect(digests.toString('hex', 32 * i, 32 * i + 32)).toBe(createHash('sha256').update(data).digest('hex'));
      if (offsets[i]! >= 0) expect(contents.subarray(offsets[i]!, offsets[i]! + data.length).equals(data)).toBe(true);
    }
    expect([...ok.subarray(names.length)]).toEqual([0, 0, 0]);
  });
});

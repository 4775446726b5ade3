import { lstatSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirFd } from '../../src/fs/dir-fds.js';
import { encodeUstarInto, type TarEntry } from '../../src/layer/tar-format.js';
import { native } from '../../src/native/index.js';
import { mixedBytes, tempDir } from '../helpers/fixtures.js';

const BLOCK = 512;

/** The addon's ustar entries (tarFiles) for files of a directory, with the given tar names and attributes. */
function nativeEntries(dir: string, files: Array<{ file: string; entry: TarEntry }>): { out: Buffer; ok: number[] } {
  const meta = new Float64Array(8 * files.length);
  let size = 0;
  for (const [i, { file, entry }] of files.entries()) {
    const st = lstatSync(path.join(dir, file));
    meta.set([st.dev, st.ino, st.size, entry.mode, entry.uid, entry.gid, entry.mtime, size], 8 * i);
    size += BLOCK + Math.ceil(st.size / BLOCK) * BLOCK;
  }
  const out = Buffer.alloc(size);
  const ok = new Uint8Array(files.length);
  const errs = new Int32Array(files.length);
  native().tarFiles(dirFd(dir), files.map((f) => `${f.file}\0`).join(''), files.map((f) => `${f.entry.path}\0`).join(''), meta, out, ok, errs, 2);
  return { out, ok: [...ok] };
}

/** What the JavaScript writer makes of the same entries: encodeUstarInto's header, the content, the padding. */
function jsEntries(contents: Buffer[], entries: TarEntry[]): Buffer {
  return Buffer.concat(
    entries.flatMap((e, i) => {
      const header = Buffer.alloc(BLOCK);
      expect(encodeUstarInto(e, header, 0)).toBe(true);
      return [header, contents[i]!, Buffer.alloc(Math.ceil(contents[i]!.length / BLOCK) * BLOCK - contents[i]!.length)];
    }),
  );
}

describe('small files as ustar entries, made by the addon', () => {
  it('writes them byte for byte as the JavaScript writer does', () => {
    const dir = tempDir('tarfiles-');
    const cases: Array<[Buffer, Partial<TarEntry>]> = [
      [Buffer.alloc(0), { path: 'empty' }],
      [mixedBytes(511), { path: 'a/just-under-a-block', mode: 0o4755 }],
      [mixedBytes(512), { path: 'a/one-block', mode: 0o600, uid: 0o7777777, gid: 0o7777776 }],
      [mixedBytes(513), { path: 'a/just-over', mtime: 0o77777777776 }],
      [mixedBytes(64 * 1024), { path: `${'d'.repeat(50)}/${'f'.repeat(48)}`, mtime: 0 }],
      [Buffer.from('utf-8\n'), { path: `names/été-${'é'.repeat(40)}` }],
      [Buffer.from('sticky\n'), { path: 'tmp/x', mode: 0o1777, uid: 1000, gid: 1000 }],
    ];
    const files = cases.map(([content, attrs], i) => {
      writeFileSync(path.join(dir, `f${i}`), content);
      return { file: `f${i}`, entry: { path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: content.length, mtime: 1_700_000_000, ...attrs } as TarEntry };
    });
    const { out, ok } = nativeEntries(dir, files);
    expect(ok).toEqual(cases.map(() => 1));
    expect(out.equals(jsEntries(cases.map(([c]) => c), files.map((f) => f.entry)))).toBe(true);
  });

  it('refuses a file that changed since it was planned, or that a symlink stands for', () => {
    const dir = tempDir('tarfiles-');
    writeFileSync(path.join(dir, 'grew'), 'small');
    writeFileSync(path.join(dir, 'real'), 'real');
    const entry = (p: string): TarEntry => ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
    const planned = nativeEntries(dir, [{ file: 'grew', entry: entry('grew') }, { file: 'real', entry: entry('real') }]);
    expect(planned.ok).toEqual([1, 1]);
    const meta = new Float64Array(16);
    const st = lstatSync(path.join(dir, 'grew'));
    meta.set([st.dev, st.ino, st.size + 1, 0o644, 0, 0, 0, 0, st.dev, st.ino, st.size, 0o644, 0, 0, 0, 1024], 0);
    const ok = new Uint8Array(2);
    native().tarFiles(dirFd(dir), 'grew\0../escape\0', 'grew\0escape\0', meta, Buffer.alloc(4096), ok, new Int32Array(2), 1);
    expect([...ok]).toEqual([0, 0]);
  });
});

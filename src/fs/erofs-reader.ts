// A layer's EROFS image read without mounting it: lookups, stats, directory listings, file contents.
import { closeSync, openSync, readSync, type Stats } from 'node:fs';
import { IntegrityError } from '../errors.js';
import {
  BLOCK_SIZE,
  DIRENT_SIZE,
  FLAT_INLINE,
  INODE_SIZE,
  MAGIC,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SUPERBLOCK_OFFSET,
  XATTR_HEADER_SIZE,
  xattrName,
} from './erofs-format.js';

/** One inode as the image holds it, with the stat fields Node's fs.Stats gives. */
class ErofsStats {
  readonly dev = 0;
  readonly blksize = BLOCK_SIZE;
  readonly atimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  readonly blocks: number;

  constructor(
    readonly ino: number,
    readonly mode: number,
    readonly nlink: number,
    readonly uid: number,
    readonly gid: number,
    readonly rdev: number,
    readonly size: number,
    readonly mtimeMs: number,
  ) {
    this.atimeMs = this.ctimeMs = this.birthtimeMs = mtimeMs;
    this.blocks = Math.ceil(size / 512);
  }

  get mtime() {
    return new Date(this.mtimeMs);
  }
  get atime() {
    return new Date(this.atimeMs);
  }
  get ctime() {
    return new Date(this.ctimeMs);
  }
  get birthtime() {
    return new Date(this.birthtimeMs);
  }
  isFile() {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory() {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink() {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  isCharacterDevice() {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  isBlockDevice() {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
  isFIFO() {
    return (this.mode & S_IFMT) === 0o010000;
  }
  isSocket() {
    return (this.mode & S_IFMT) === 0o140000;
  }
}

interface Inode {
  stat: ErofsStats;
  layout: number;
  blkaddr: number;
  /** Where its xattrs start, and their bytes. */
  xattrAt: number;
  xattrSize: number;
}

/**
 * An EROFS image tsbuild wrote (erofs-writer.ts), read with pread: what RootfsView needs of a layer
 * that is mounted, not extracted. Directories are read whole once and kept.
 */
export class ErofsImage {
  private readonly fd: number;
  private readonly metaBase: number;
  private readonly rootNid: number;
  private readonly dirs = new Map<number, Map<string, number>>();
  private readonly inodes = new Map<number, Inode>();

  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    const sb = this.read(SUPERBLOCK_OFFSET, 128);
    if (sb.readUInt32LE(0) !== MAGIC || sb.readUInt8(12) !== 12) {
      closeSync(this.fd);
      throw new IntegrityError(`${file} is not an EROFS image with 4 KiB blocks`);
    }
    this.rootNid = sb.readUInt16LE(14);
    this.metaBase = sb.readUInt32LE(40) * BLOCK_SIZE;
  }

  close(): void {
    closeSync(this.fd);
  }

  private read(position: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const n = readSync(this.fd, buf, off, length - off, position + off);
      if (n === 0) throw new IntegrityError(`${this.file} is truncated`);
      off += n;
    }
    return buf;
  }

  private inode(nid: number): Inode {
    const known = this.inodes.get(nid);
    if (known) return known;
    const at = this.metaBase + nid * 32;
    const raw = this.read(at, INODE_SIZE);
    const format = raw.readUInt16LE(0);
    if ((format & 1) !== 1) throw new IntegrityError(`${this.file}: inode ${nid} is not in the form tsbuild writes`);
    const icount = raw.readUInt16LE(2);
    const mode = raw.readUInt16LE(4);
    const iu = raw.readUInt32LE(16);
    const special = (mode & S_IFMT) === S_IFCHR || (mode & S_IFMT) === S_IFBLK;
    const stat = new ErofsStats(
      nid,
      mode,
      raw.readUInt32LE(44),
      raw.readUInt32LE(24),
      raw.readUInt32LE(28),
      special ? iu : 0,
      Number(raw.readBigUInt64LE(8)),
      Number(raw.readBigInt64LE(32)) * 1000 + Math.floor(raw.readUInt32LE(40) / 1e6),
    );
    const inode = { stat, layout: (format >> 1) & 7, blkaddr: special ? 0 : iu, xattrAt: at + INODE_SIZE, xattrSize: icount === 0 ? 0 : XATTR_HEADER_SIZE + 4 * (icount - 1) };
    this.inodes.set(nid, inode);
    return inode;
  }

  /** All of an inode's data: blocks from raw_blkaddr, the tail after the inode when inline. */
  private data(inode: Inode): Buffer {
    const size = inode.stat.size;
    if (inode.layout !== FLAT_INLINE) return this.read(inode.blkaddr * BLOCK_SIZE, size);
    const full = Math.floor(size / BLOCK_SIZE) * BLOCK_SIZE;
    const tail = this.read(inode.xattrAt + inode.xattrSize, size - full);
    return full === 0 ? tail : Buffer.concat([this.read(inode.blkaddr * BLOCK_SIZE, full), tail]);
  }

  private entries(nid: number): Map<string, number> {
    const known = this.dirs.get(nid);
    if (known) return known;
    const inode = this.inode(nid);
    const data = this.data(inode);
    const names = new Map<string, number>();
    for (let start = 0; start < data.length; start += BLOCK_SIZE) {
      const block = data.subarray(start, start + BLOCK_SIZE);
      const count = block.readUInt16LE(8) / DIRENT_SIZE;
      for (let i = 0; i < count; i++) {
        const nameoff = block.readUInt16LE(i * DIRENT_SIZE + 8);
        let end = i + 1 < count ? block.readUInt16LE((i + 1) * DIRENT_SIZE + 8) : block.indexOf(0, nameoff);
        if (end < 0) end = block.length;
        const name = block.toString('utf8', nameoff, end);
        if (name !== '.' && name !== '..') names.set(name, Number(block.readBigUInt64LE(i * DIRENT_SIZE)));
      }
    }
    this.dirs.set(nid, names);
    return names;
  }

  /** The inode at these components, no symlink followed, or undefined. */
  private lookup(comps: readonly string[]): number | undefined {
    let nid = this.rootNid;
    for (const c of comps) {
      if (!this.inode(nid).stat.isDirectory()) return undefined;
      const next = this.entries(nid).get(c);
      if (next === undefined) return undefined;
      nid = next;
    }
    return nid;
  }

  lstat(comps: readonly string[]): Stats | null {
    const nid = this.lookup(comps);
    return nid === undefined ? null : (this.inode(nid).stat as unknown as Stats);
  }

  readdir(comps: readonly string[]): string[] {
    const nid = this.lookup(comps);
    return nid === undefined ? [] : [...this.entries(nid).keys()];
  }

  /** A file's content or a symlink's target. */
  content(comps: readonly string[]): Buffer {
    const nid = this.lookup(comps);
    if (nid === undefined) throw new IntegrityError(`${comps.join('/')} is not in ${this.file}`);
    return this.data(this.inode(nid));
  }

  xattr(comps: readonly string[], name: string): Buffer | undefined {
    const nid = this.lookup(comps);
    if (nid === undefined) return undefined;
    const inode = this.inode(nid);
    if (inode.xattrSize === 0) return undefined;
    const body = this.read(inode.xattrAt, inode.xattrSize);
    for (let p = XATTR_HEADER_SIZE; p + 4 <= body.length; ) {
      const nameLen = body.readUInt8(p);
      const valueSize = body.readUInt16LE(p + 2);
      if (xattrName(body.readUInt8(p + 1), body.toString('utf8', p + 4, p + 4 + nameLen)) === name) return body.subarray(p + 4 + nameLen, p + 4 + nameLen + valueSize);
      p += Math.ceil((4 + nameLen + valueSize) / 4) * 4;
    }
    return undefined;
  }
}

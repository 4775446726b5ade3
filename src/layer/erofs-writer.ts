// Layer tar to an EROFS image: the layer's files in overlay form, one file on disk, mounted read-only
// as a RUN step's lowerdir instead of creating every file of the layer in the store.
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { IntegrityError } from '../errors.js';
import { isOverlayXattr, OPAQUE_MARKER, WHITEOUT_PREFIX } from '../fs/whiteout.js';
import type { TarReadEntry } from './tar-reader.js';
import {
  alignUp,
  BLOCK_SIZE,
  DIRENT_SIZE,
  encodeDev,
  fileType,
  FLAT_INLINE,
  FLAT_PLAIN,
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
  xattrKey,
} from '../fs/erofs-format.js';

/**
 * A layer this writer leaves to extraction: what only a directory on disk gives exactly (a parent
 * reached through a symlink, a directory the tar does not list over layers below, an xattr EROFS has
 * no name for), or more than it keeps in memory.
 */
export class ErofsUnsupported extends Error {}

interface Node {
  /** st_mode: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  xattrs?: Map<string, Buffer>;
  /** A file's or symlink's data kept for the inode's tail (all of it: FLAT_INLINE). */
  inline?: Buffer;
  /** First block of the data in blocks (FLAT_PLAIN files, directories' full blocks). */
  blkaddr: number;
  rdev: number;
  children?: Map<string, Node>;
  parent?: Node;
  nid: number;
  links: number;
  /** A directory's layout: its names in byte order with their nodes, and where its blocks break. */
  dir?: DirLayout;
}

interface DirLayout {
  names: Buffer[];
  nodes: Node[];
  /** Index of the first name of each block. */
  breaks: number[];
  /** Bytes of the last block (the inline tail when inline). */
  tail: number;
  inline: boolean;
}

/** Files up to this size (with their inode) go in the metadata, while this much is kept in memory in all. */
const INLINE_BUDGET = 64 << 20;
/** Entries of one layer kept as a tree in memory (~200 bytes each): a bigger layer is extracted, in bounded memory. */
const MAX_NODES = 500_000;
const MAX_ID = 0xffffffff;
const SLAB = 1 << 20;

const enc = (s: string) => Buffer.from(s, 'utf8');

function xattrBodySize(xattrs: Map<string, Buffer> | undefined): number {
  if (!xattrs || xattrs.size === 0) return 0;
  let size = XATTR_HEADER_SIZE;
  for (const [name, value] of xattrs) size += alignUp(4 + Buffer.byteLength(xattrKey(name)![1]) + value.length, 4);
  return size;
}

function components(p: string): string[] | null {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new IntegrityError(`layer entry "${p}" contains "..": refused`);
  return parts.length === 0 ? null : parts;
}

/** The image file, written at positions: file data from block 1 up, metadata after it. */
class ImageFile {
  /** Next free byte of the data area. */
  dataEnd = BLOCK_SIZE;

  constructor(readonly fd: number) {}

  write(buf: Buffer, position: number): void {
    for (let off = 0; off < buf.length; ) off += writeSync(this.fd, buf, off, buf.length - off, position + off);
  }

  /** Reserves whole blocks in the data area; returns the first block's address. */
  reserve(bytes: number): number {
    const blkaddr = this.dataEnd / BLOCK_SIZE;
    this.dataEnd += alignUp(bytes, BLOCK_SIZE);
    return blkaddr;
  }
}

/** Small files' contents, copied out of the tar's chunks into big slabs. */
class Tails {
  private slab = Buffer.allocUnsafe(SLAB);
  private used = 0;
  total = 0;

  keep(chunks: Buffer[], size: number): Buffer {
    if (this.used + size > this.slab.length) {
      this.slab = Buffer.allocUnsafe(Math.max(SLAB, size));
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + size);
    let off = 0;
    for (const c of chunks) off += c.copy(out, off);
    this.used += size;
    this.total += size;
    return out;
  }
}

/** The tree the tar's entries make, as applyLayer would make it on disk. */
class Tree {
  readonly root: Node;
  count = 1;

  constructor(private readonly hasParent: boolean) {
    this.root = { mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, size: 0, blkaddr: 0, rdev: 0, nid: -1, links: 0, children: new Map() };
  }

  /**
   * The directory at these components, made when missing and no layer is below: root 0755, as
   * extraction makes it, with time 0 (the image is the same whenever it is written).
   */
  dirAt(comps: readonly string[], shown: string): Node {
    let cur = this.root;
    for (const c of comps) {
      let next = cur.children!.get(c);
      if (!next) {
        // a directory the tar does not list takes its attributes from the layers below: extraction knows them
        if (this.hasParent) throw new ErofsUnsupported(`"${shown}": a directory the layer does not list`);
        next = this.node(S_IFDIR | 0o755, 0, 0, 0);
        next.children = new Map();
        cur.children!.set(c, next);
      }
      if ((next.mode & S_IFMT) === S_IFLNK) throw new ErofsUnsupported(`"${shown}": a parent is a symlink`);
      if ((next.mode & S_IFMT) !== S_IFDIR) throw new IntegrityError(`layer entry "${shown}": parent is not a directory`);
      cur = next;
    }
    return cur;
  }

  node(mode: number, uid: number, gid: number, mtime: number): Node {
    if (++this.count > MAX_NODES) throw new ErofsUnsupported(`more than ${MAX_NODES} entries`);
    if (uid < 0 || uid > MAX_ID || gid < 0 || gid > MAX_ID) throw new ErofsUnsupported(`owner ${uid}:${gid}`);
    return { mode, uid, gid, mtime, size: 0, blkaddr: 0, rdev: 0, nid: -1, links: 0 };
  }
}

function setXattrs(node: Node, e: TarReadEntry): void {
  for (const [name, value] of e.xattrs ?? []) {
    if (isOverlayXattr(name)) continue; // overlayfs's own markers: a layer's tar cannot hide files through them
    const key = xattrKey(name);
    if (!key || Buffer.byteLength(key[1]) > 255) throw new ErofsUnsupported(`xattr ${name}`);
    if (value.length > 0xffff) throw new ErofsUnsupported(`xattr ${name} of ${value.length} bytes`);
    (node.xattrs ??= new Map()).set(name, value);
  }
  // an inode and its xattrs stay within one block
  if (INODE_SIZE + xattrBodySize(node.xattrs) > BLOCK_SIZE) throw new ErofsUnsupported(`"${e.path}": xattrs of more than a block`);
}

async function readBody(e: TarReadEntry): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of e.body()) chunks.push(c);
  return chunks;
}

/** Adds one tar entry to the tree, as applyLayer applies it to a directory. */
async function addEntry(tree: Tree, image: ImageFile, tails: Tails, e: TarReadEntry): Promise<void> {
  const comps = components(e.path);
  if (comps === null) return; // the root itself
  const base = comps.at(-1)!;
  if (Buffer.byteLength(base) > 255) throw new ErofsUnsupported(`"${e.path}": a name longer than 255 bytes`);
  const parent = tree.dirAt(comps.slice(0, -1), e.path);
  const children = parent.children!;
  if (base === OPAQUE_MARKER) {
    (parent.xattrs ??= new Map()).set('trusted.overlay.opaque', Buffer.from('y'));
    return;
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw new IntegrityError(`layer entry "${e.path}" is not a valid whiteout`);
    children.set(name, tree.node(S_IFCHR | 0o600, e.uid, e.gid, e.mtime));
    return;
  }
  let node: Node;
  switch (e.type) {
    case 'file': {
      node = tree.node(S_IFREG | (e.mode & 0o7777), e.uid, e.gid, e.mtime);
      setXattrs(node, e);
      node.size = e.size;
      const room = BLOCK_SIZE - INODE_SIZE - xattrBodySize(node.xattrs);
      if (e.size > 0 && e.size <= room && tails.total + e.size <= INLINE_BUDGET) {
        node.inline = tails.keep(await readBody(e), e.size);
      } else if (e.size > 0) {
        node.blkaddr = image.reserve(e.size);
        let pos = node.blkaddr * BLOCK_SIZE;
        for await (const c of e.body()) {
          image.write(c, pos);
          pos += c.length;
        }
      }
      children.set(base, node);
      return;
    }
    case 'dir': {
      const existing = children.get(base);
      if (existing && (existing.mode & S_IFMT) === S_IFDIR) node = existing; // kept, with what it holds
      else {
        node = tree.node(S_IFDIR, e.uid, e.gid, e.mtime);
        node.children = new Map();
        children.set(base, node);
      }
      node.mode = S_IFDIR | (e.mode & 0o7777);
      node.uid = e.uid;
      node.gid = e.gid;
      node.mtime = e.mtime;
      setXattrs(node, e);
      return;
    }
    case 'symlink': {
      node = tree.node(S_IFLNK | 0o777, e.uid, e.gid, e.mtime);
      const target = enc(e.linkname ?? '');
      node.size = target.length;
      setXattrs(node, e);
      if (target.length > BLOCK_SIZE - INODE_SIZE - xattrBodySize(node.xattrs)) throw new ErofsUnsupported(`symlink of ${target.length} bytes`);
      node.inline = target.length > 0 ? target : undefined;
      children.set(base, node);
      return;
    }
    case 'hardlink': {
      const linkComps = components(e.linkname ?? '');
      if (linkComps === null) throw new IntegrityError(`layer entry "${e.path}" is a hard link to the root`);
      let target: Node | undefined = tree.root;
      for (const c of linkComps) {
        if ((target.mode & S_IFMT) === S_IFLNK) throw new ErofsUnsupported(`"${e.path}": a hard link through a symlink`);
        target = target.children?.get(c);
        if (!target) break;
      }
      if (!target) throw new IntegrityError(`layer entry "${e.path}" links to "${e.linkname}", which is not in the layer`);
      if ((target.mode & S_IFMT) === S_IFDIR) throw new ErofsUnsupported(`"${e.path}": a hard link to a directory`);
      children.set(base, target);
      return;
    }
    case 'char':
    case 'block':
    case 'fifo': {
      const kind = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : 0o010000;
      node = tree.node(kind | (e.mode & 0o7777), e.uid, e.gid, e.mtime);
      const [major, minor] = [e.devmajor ?? 0, e.devminor ?? 0];
      if (major > 0xfff || minor > 0xfffff) throw new ErofsUnsupported(`"${e.path}": device ${major}:${minor}`);
      if (kind !== 0o010000) node.rdev = encodeDev(major, minor);
      setXattrs(node, e);
      children.set(base, node);
      return;
    }
  }
}

/** Sorts a directory's names (bytewise, as EROFS looks them up) and splits its dirents into blocks. */
function layoutDir(node: Node, xattrSize: number): DirLayout {
  const named = [...node.children!].map(([name, child]) => [enc(name), child] as const);
  named.push([enc('.'), node], [enc('..'), node.parent ?? node]);
  named.sort((a, b) => Buffer.compare(a[0], b[0]));
  const breaks = [0];
  let used = 0;
  for (const [i, [name]] of named.entries()) {
    const need = DIRENT_SIZE + name.length;
    if (used + need > BLOCK_SIZE) {
      breaks.push(i);
      used = 0;
    }
    used += need;
  }
  node.size = (breaks.length - 1) * BLOCK_SIZE + used;
  const inline = INODE_SIZE + xattrSize + used <= BLOCK_SIZE;
  return { names: named.map(([n]) => n), nodes: named.map(([, c]) => c), breaks, tail: used, inline };
}

function dirBlock(layout: DirLayout, b: number, size: number): Buffer {
  const start = layout.breaks[b]!;
  const end = layout.breaks[b + 1] ?? layout.names.length;
  const buf = Buffer.alloc(size);
  let nameoff = (end - start) * DIRENT_SIZE;
  for (let i = start; i < end; i++) {
    const at = (i - start) * DIRENT_SIZE;
    const child = layout.nodes[i]!;
    buf.writeBigUInt64LE(BigInt(child.nid), at);
    buf.writeUInt16LE(nameoff, at + 8);
    buf.writeUInt8(fileType(child.mode), at + 10);
    nameoff += layout.names[i]!.copy(buf, nameoff);
  }
  return buf;
}

/** Metadata written through a window of whole blocks: records come in nid order, never across a block. */
class MetaWriter {
  private readonly buf = Buffer.alloc(4 << 20);
  /** Byte offset (in the metadata area) of the window's start. */
  private start = 0;

  constructor(
    private readonly image: ImageFile,
    private readonly base: number,
  ) {}

  /** The window's bytes for a record at this offset, moving the window on when it does not fit. */
  at(offset: number, size: number): Buffer {
    if (offset + size > this.start + this.buf.length) {
      // the blocks before the record's are complete: written out; its own block's start kept
      const next = offset - (offset % BLOCK_SIZE);
      this.image.write(this.buf.subarray(0, next - this.start), this.base + this.start);
      this.buf.copy(this.buf, 0, next - this.start, offset - this.start);
      this.buf.fill(0, offset - next);
      this.start = next;
    }
    return this.buf.subarray(offset - this.start, offset - this.start + size);
  }

  finish(end: number): void {
    this.image.write(this.buf.subarray(0, alignUp(end, BLOCK_SIZE) - this.start), this.base + this.start);
  }
}

function writeXattrs(out: Buffer, at: number, xattrs: Map<string, Buffer>): void {
  let p = at + XATTR_HEADER_SIZE; // h_name_filter 0, no shared xattrs
  for (const [name, value] of xattrs) {
    const [index, rest] = xattrKey(name)!;
    const restBuf = enc(rest);
    out.writeUInt8(restBuf.length, p);
    out.writeUInt8(index, p + 1);
    out.writeUInt16LE(value.length, p + 2);
    restBuf.copy(out, p + 4);
    value.copy(out, p + 4 + restBuf.length);
    p += alignUp(4 + restBuf.length + value.length, 4);
  }
}

/**
 * Lays the tree out and writes its metadata: inodes breadth-first from the root (nid 1), each with
 * its xattrs and inline data in one block; directories' full blocks in the data area.
 */
function writeMeta(tree: Tree, image: ImageFile): { metaBlkaddr: number; metaSize: number; inodes: number } {
  const order: Node[] = [];
  let meta = 32; // nid 0 would be inode number 0, which readdir(3) skips as a deleted entry
  const assign = (node: Node) => {
    node.links++;
    if (node.nid >= 0) return false;
    const xsize = xattrBodySize(node.xattrs);
    let inline = node.inline?.length ?? 0;
    if (node.children) {
      node.dir = layoutDir(node, xsize);
      inline = node.dir.inline ? node.dir.tail : 0;
      const blocks = node.dir.breaks.length - (node.dir.inline ? 1 : 0);
      if (blocks > 0) node.blkaddr = image.reserve(blocks * BLOCK_SIZE);
    }
    const rec = INODE_SIZE + xsize + inline;
    meta = alignUp(meta, 32);
    if ((meta % BLOCK_SIZE) + rec > BLOCK_SIZE) meta = alignUp(meta, BLOCK_SIZE);
    node.nid = meta / 32;
    meta += rec;
    order.push(node);
    return true;
  };
  assign(tree.root);
  for (let i = 0; i < order.length; i++) {
    const dir = order[i]!.dir;
    if (!dir) continue;
    for (const [j, child] of dir.nodes.entries()) {
      const name = dir.names[j]!;
      if (name.length <= 2 && (name.equals(DOT) || name.equals(DOTDOT))) continue;
      if (child.children) child.parent = order[i];
      assign(child);
    }
  }
  const metaBlkaddr = image.dataEnd / BLOCK_SIZE;
  const out = new MetaWriter(image, metaBlkaddr * BLOCK_SIZE);
  for (const [ino, node] of order.entries()) {
    const xsize = xattrBodySize(node.xattrs);
    const dir = node.dir;
    let data = node.inline;
    let layout = data ? FLAT_INLINE : FLAT_PLAIN;
    let nlink = node.links;
    if (dir) {
      nlink = 2;
      for (const c of node.children!.values()) if (c.children) nlink++;
      const full = dir.breaks.length - 1;
      for (let b = 0; b < full; b++) image.write(dirBlock(dir, b, BLOCK_SIZE), (node.blkaddr + b) * BLOCK_SIZE);
      const last = dirBlock(dir, full, dir.tail);
      if (dir.inline) {
        data = last;
        layout = FLAT_INLINE;
      } else {
        image.write(last, (node.blkaddr + full) * BLOCK_SIZE);
        layout = FLAT_PLAIN;
      }
    }
    const rec = out.at(node.nid * 32, INODE_SIZE + xsize + (data?.length ?? 0));
    rec.writeUInt16LE(1 | (layout << 1), 0); // extended inode
    rec.writeUInt16LE(xsize === 0 ? 0 : (xsize - XATTR_HEADER_SIZE) / 4 + 1, 2);
    rec.writeUInt16LE(node.mode, 4);
    rec.writeBigUInt64LE(BigInt(node.size), 8);
    rec.writeUInt32LE((node.mode & S_IFMT) === S_IFCHR || (node.mode & S_IFMT) === S_IFBLK ? node.rdev : node.blkaddr, 16);
    rec.writeUInt32LE(ino + 1, 20);
    rec.writeUInt32LE(node.uid, 24);
    rec.writeUInt32LE(node.gid, 28);
    rec.writeBigInt64LE(BigInt(node.mtime), 32);
    rec.writeUInt32LE(nlink, 44);
    if (node.xattrs && xsize > 0) writeXattrs(rec, INODE_SIZE, node.xattrs);
    data?.copy(rec, INODE_SIZE + xsize);
  }
  out.finish(meta);
  return { metaBlkaddr, metaSize: meta, inodes: order.length };
}

const DOT = enc('.');
const DOTDOT = enc('..');

function superblock(root: Node, inodes: number, blocks: number, metaBlkaddr: number): Buffer {
  const sb = Buffer.alloc(128);
  sb.writeUInt32LE(MAGIC, 0);
  sb.writeUInt8(12, 12); // 4 KiB blocks
  sb.writeUInt16LE(root.nid, 14);
  sb.writeBigUInt64LE(BigInt(inodes), 16);
  sb.writeUInt32LE(blocks, 36);
  sb.writeUInt32LE(metaBlkaddr, 40);
  return sb;
}

/**
 * Writes the EROFS image of a layer tar to `file` (a new file), as applyLayer would lay the layer out
 * in a directory: whiteouts as 0/0 character devices, opaque directories by trusted.overlay.opaque.
 * `hasParent`: layers lie below this one (a directory the tar does not list is then left to extraction).
 * Throws ErofsUnsupported for a layer only extraction lays out exactly; the file is then incomplete.
 */
export async function writeErofs(entries: AsyncIterable<TarReadEntry>, file: string, hasParent: boolean): Promise<void> {
  const fd = openSync(file, 'wx', 0o600);
  try {
    const image = new ImageFile(fd);
    const tree = new Tree(hasParent);
    const tails = new Tails();
    for await (const e of entries) await addEntry(tree, image, tails, e);
    const { metaBlkaddr, metaSize, inodes } = writeMeta(tree, image);
    const blocks = metaBlkaddr + alignUp(metaSize, BLOCK_SIZE) / BLOCK_SIZE;
    image.write(superblock(tree.root, inodes, blocks, metaBlkaddr), SUPERBLOCK_OFFSET);
    ftruncateSync(fd, blocks * BLOCK_SIZE);
  } finally {
    closeSync(fd);
  }
}

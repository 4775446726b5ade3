// Tar headers, encoded deterministically and decoded.
import { Header } from 'tar/header';

/**
 * One tar entry's metadata, as tsbuild reads and writes layers. Paths are relative, without a
 * leading `./` or `/`; directories carry no trailing slash here (the encoder adds it).
 */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target (verbatim) or hard link target path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

export const BLOCK = 512;

const TYPE_TO_CODE: Record<EntryType, string> = {
  file: 'File',
  dir: 'Directory',
  symlink: 'SymbolicLink',
  hardlink: 'Link',
  char: 'CharacterDevice',
  block: 'BlockDevice',
  fifo: 'FIFO',
};

const ZERO_BLOCK = Buffer.alloc(BLOCK);

export function paddingFor(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? ZERO_BLOCK.subarray(0, 0) : ZERO_BLOCK.subarray(0, BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

/** A PAX record: "<len> <key>=<value>\n", where len counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const USTAR_MAX_NUMBER = 0o7777777; // 8-byte octal fields (uid, gid, mode, devs)
const USTAR_MAX_SIZE = 0o77777777777; // 12-byte octal field

/**
 * Encodes the header blocks for an entry: a PAX extended header first when ustar cannot hold a
 * field (long path or link, big size or ids, xattrs), then the ustar header. No user or group
 * names, no atime/ctime: the same entry always encodes to the same bytes.
 */
export function encodeHeader(entry: TarEntry): Buffer {
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const size = entry.type === 'file' ? entry.size : 0;
  const header = new Header({
    path: name,
    mode: entry.mode & 0o7777,
    uid: entry.uid,
    gid: entry.gid,
    size,
    mtime: new Date(entry.mtime * 1000),
    type: TYPE_TO_CODE[entry.type] as never,
    linkpath: entry.linkname ?? '',
    uname: '',
    gname: '',
    devmaj: entry.devmajor ?? 0,
    devmin: entry.devminor ?? 0,
  });
  const block = Buffer.alloc(BLOCK);
  header.encode(block);
  const records: Buffer[] = [];
  const fits = (s: string, max: number) => Buffer.byteLength(s) <= max;
  if (header.needPax && !fits(name, 100) && !splitsIntoPrefix(name)) records.push(paxRecord('path', Buffer.from(name)));
  if (entry.linkname && !fits(entry.linkname, 100)) records.push(paxRecord('linkpath', Buffer.from(entry.linkname)));
  if (size > USTAR_MAX_SIZE) records.push(paxRecord('size', Buffer.from(String(size))));
  if (entry.uid > USTAR_MAX_NUMBER) records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
  if (entry.gid > USTAR_MAX_NUMBER) records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
  if (entry.xattrs) {
    for (const key of [...entry.xattrs.keys()].sort()) {
      records.push(paxRecord(`SCHILY.xattr.${key}`, entry.xattrs.get(key)!));
    }
  }
  if (records.length === 0) return block;
  const body = Buffer.concat(records);
  const paxHeader = new Header({
    path: `PaxHeaders.0/${lastComponent(name)}`.slice(0, 99),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: new Date(entry.mtime * 1000),
    type: 'ExtendedHeader' as never,
    uname: '',
    gname: '',
  });
  const paxBlock = Buffer.alloc(BLOCK);
  paxHeader.encode(paxBlock);
  return Buffer.concat([paxBlock, body, paddingFor(body.length), block]);
}

/** Whether ustar's 155-byte prefix + 100-byte name split can hold the path. */
function splitsIntoPrefix(name: string): boolean {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return true;
  if (bytes > 256) return false;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return true;
  }
  return false;
}

function lastComponent(name: string): string {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Parses the body of a PAX extended header into key → raw value (values may be binary). */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    const space = body.indexOf(0x20, off);
    if (space < 0) break;
    const len = Number(body.subarray(off, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || off + len > body.length) break;
    const record = body.subarray(space + 1, off + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/** Decodes a ustar/GNU/v7 header block; returns null for an all-zero block. */
export function decodeHeader(block: Buffer): (Omit<TarEntry, 'type'> & { typeflag: string; checksumOk: boolean }) | null {
  if (block.every((b) => b === 0)) return null;
  const h = new Header(block);
  const typeflag = String.fromCharCode(block[156] || 0x30);
  return {
    path: h.path ?? '',
    typeflag,
    mode: (h.mode ?? 0) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size: h.size ?? 0,
    mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
    linkname: h.linkpath ?? '',
    // read for any magic: node-tar decodes them only for POSIX ustar, GNU tar writes "ustar  "
    devmajor: octalField(block, 329, 8),
    devminor: octalField(block, 337, 8),
    checksumOk: h.cksumValid,
  };
}

/** A numeric header field: octal text, or base-256 when the high bit of the first byte is set. */
function octalField(block: Buffer, off: number, len: number): number {
  const field = block.subarray(off, off + len);
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8) || 0;
}

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

export const USTAR_MAX_NUMBER = 0o7777777; // 8-byte octal fields (uid, gid, mode, devs)
export const USTAR_MAX_SIZE = 0o77777777777; // 12-byte octal field

/**
 * Encodes the header blocks for an entry: a PAX extended header first when ustar cannot hold a
 * field (long path or link, big size or ids, xattrs), then the ustar header. No user or group
 * names, no atime/ctime: the same entry always encodes to the same bytes.
 */
export function encodeHeader(entry: TarEntry): Buffer {
  const block = Buffer.alloc(BLOCK);
  return encodeUstarInto(entry, block, 0) ? block : encodeWithPax(entry);
}

const TYPEFLAG: Record<EntryType, number> = { file: 0x30, hardlink: 0x31, symlink: 0x32, char: 0x33, block: 0x34, dir: 0x35, fifo: 0x36 };

/** An octal field as node-tar writes one: zero-padded digits, then a space and a NUL (or just a NUL when full). */
/**
 * An octal number field as node-tar writes it: `size - 1` digits and a NUL when it takes them all,
 * else zero-padded to `size - 2` digits, a space and a NUL. Returns the sum of the bytes written
 * (for the header's checksum). Written a byte at a time: three buf.write calls per field were most
 * of the cost of a header, and a COPY of 100,000 files writes 100,000 of them.
 */
function octalInto(buf: Buffer, off: number, size: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 8; x = Math.floor(x / 8)) digits++;
  const width = digits === size - 1 ? size - 1 : size - 2;
  let sum = 0;
  for (let i = width - 1, x = n; i >= 0; i--, x = Math.floor(x / 8)) {
    const c = 0x30 + (x % 8);
    buf[off + i] = c;
    sum += c;
  }
  if (width === size - 2) {
    buf[off + size - 2] = 0x20;
    sum += 0x20;
  }
  buf[off + size - 1] = 0;
  return sum;
}

/** An ASCII string's bytes into buf (the sum of them), or -1, writing nothing, when it is not ASCII. */
function asciiInto(buf: Buffer, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return -1;
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    buf[off + i] = c;
    sum += c;
  }
  return sum;
}

/** 'ustar\0' and version '00', and the sum of their bytes. */
const USTAR_MAGIC = Buffer.from('ustar\u000000', 'latin1');
const USTAR_MAGIC_SUM = USTAR_MAGIC.reduce((n, b) => n + b, 0);

/** A string field, ASCII a byte at a time, else through buf.write; the sum of its bytes. */
function textInto(buf: Buffer, off: number, s: string, size: number): number {
  const sum = asciiInto(buf, off, s);
  if (sum >= 0) return sum;
  const n = buf.write(s, off, size, 'utf8');
  let total = 0;
  for (let i = off; i < off + n; i++) total += buf[i]!;
  return total;
}

/**
 * Writes the one ustar block of an entry that needs nothing else (a path under 100 bytes, a link
 * name that fits, numbers within octal fields, no xattrs) into a zeroed `buf` at `off`, byte for
 * byte as encodeWithPax would; returns false, writing nothing, for any other entry.
 */
export function encodeUstarInto(entry: TarEntry, buf: Buffer, off: number): boolean {
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const size = entry.type === 'file' ? entry.size : 0;
  const mode = entry.mode & 0o7777;
  const link = entry.linkname ?? '';
  const dev = (entry.devmajor ?? 0) > USTAR_MAX_NUMBER || (entry.devminor ?? 0) > USTAR_MAX_NUMBER;
  if (entry.xattrs || dev || name.length >= 100 || link.length > 100 || Buffer.byteLength(name) >= 100 || Buffer.byteLength(link) > 100) return false;
  if (entry.uid < 0 || entry.uid > USTAR_MAX_NUMBER || entry.gid < 0 || entry.gid > USTAR_MAX_NUMBER || size > USTAR_MAX_SIZE) return false;
  if (!Number.isInteger(entry.mtime) || entry.mtime < 0 || entry.mtime > USTAR_MAX_SIZE) return false;
  // the checksum counts its own field as spaces, and every byte not written is zero
  let sum = 8 * 0x20 + textInto(buf, off, name, 100);
  sum += octalInto(buf, off + 100, 8, mode);
  sum += octalInto(buf, off + 108, 8, entry.uid);
  sum += octalInto(buf, off + 116, 8, entry.gid);
  sum += octalInto(buf, off + 124, 12, size);
  sum += octalInto(buf, off + 136, 12, entry.mtime);
  buf[off + 156] = TYPEFLAG[entry.type];
  sum += TYPEFLAG[entry.type];
  if (link) sum += textInto(buf, off + 157, link, 100);
  USTAR_MAGIC.copy(buf, off + 257);
  sum += USTAR_MAGIC_SUM;
  sum += octalInto(buf, off + 329, 8, entry.devmajor ?? 0);
  sum += octalInto(buf, off + 337, 8, entry.devminor ?? 0);
  octalInto(buf, off + 148, 8, sum);
  return true;
}

/** The general case, through node-tar's Header: prefix splits, base-256 numbers, PAX records. */
export function encodeWithPax(entry: TarEntry): Buffer {
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

/** A NUL-terminated string field, UTF-8. */
function stringField(block: Buffer, off: number, len: number): string {
  const nul = block.indexOf(0, off);
  return block.toString('utf8', off, nul < 0 || nul > off + len ? off + len : nul);
}

/**
 * Decodes a ustar/GNU/v7 header block as Go's archive/tar (Docker's reader) does; returns null for
 * an all-zero block. The path joins ustar's 155-byte prefix when the magic is POSIX ustar's.
 */
export function decodeHeader(block: Buffer): (Omit<TarEntry, 'type'> & { typeflag: string; checksumOk: boolean }) | null {
  // the checksum counts its own field as spaces; old tars summed signed bytes
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  if (sum === 0) return null; // all zero: the end of the archive
  for (let i = 148; i < 156; i++) sum += 0x20 - block[i]!;
  const checksum = octalField(block, 148, 8);
  let signed = sum;
  if (checksum !== sum) for (let i = 0; i < BLOCK; i++) if (block[i]! > 127 && (i < 148 || i >= 156)) signed -= 256;
  let name = stringField(block, 0, 100);
  const posix = block.toString('latin1', 257, 265) === 'ustar\u000000';
  if (posix && block[345] !== 0) name = `${stringField(block, 345, 155)}/${name}`;
  return {
    path: name,
    typeflag: String.fromCharCode(block[156] || 0x30),
    mode: octalField(block, 100, 8) & 0o7777,
    uid: octalField(block, 108, 8),
    gid: octalField(block, 116, 8),
    size: Math.max(0, octalField(block, 124, 12)),
    mtime: octalField(block, 136, 12),
    linkname: stringField(block, 157, 100),
    // read for any magic: GNU tar writes "ustar  " and devices too
    devmajor: octalField(block, 329, 8),
    devminor: octalField(block, 337, 8),
    checksumOk: checksum === sum || checksum === signed,
  };
}

/**
 * A numeric header field: octal text (up to a NUL, spaces trimmed), or base-256 two's complement
 * when the high bit of the first byte is set (GNU and Go write big sizes, ids and times so).
 */
function octalField(block: Buffer, off: number, len: number): number {
  const first = block[off]!;
  if (first & 0x80) {
    const inv = first & 0x40 ? 0xff : 0;
    let n = 0;
    for (let i = 0; i < len; i++) {
      let c = block[off + i]! ^ inv;
      if (i === 0) c &= 0x7f;
      n = n * 256 + c;
    }
    return inv ? -n - 1 : n;
  }
  let n = 0;
  let seen = false;
  for (let i = off; i < off + len; i++) {
    const c = block[i]!;
    if (c === 0) break;
    if (c === 0x20) {
      if (seen) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) return seen ? n : 0;
    n = n * 8 + (c - 0x30);
    seen = true;
  }
  return n;
}

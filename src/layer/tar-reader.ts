// Reading a tar stream entry by entry, in bounded memory.
import { IntegrityError } from '../errors.js';
import { BLOCK, decodeHeader, parsePax, type EntryType, type TarEntry } from './tar-format.js';

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly it: AsyncIterator<Buffer>;
  private ended = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    const inner = source[Symbol.asyncIterator]();
    this.it = {
      next: async () => {
        const r = await inner.next();
        if (r.done) return r;
        const v = r.value;
        return { done: false, value: typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : Buffer.from(v) };
      },
    };
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    if (r.value.length > 0) {
      this.chunks.push(r.value);
      this.buffered += r.value.length;
    }
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && (await this.fill()));
    return this.take(Math.min(n, this.buffered));
  }

  /** Exactly n bytes when that many are buffered already (no waiting), else undefined. */
  readBuffered(n: number): Buffer | undefined {
    return this.buffered >= n ? this.take(n) : undefined;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const want = n - off;
      if (c.length <= want) {
        c.copy(out, off);
        off += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, off, 0, want);
        this.chunks[0] = c.subarray(want);
        off += want;
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Up to n bytes as they arrive, without joining chunks. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill())) return;
      const c = this.take(Math.min(left, this.chunks[0]!.length));
      left -= c.length;
      yield c;
    }
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const c of this.stream(n)) skipped += c.length;
    return skipped;
  }
}

export interface TarReadEntry extends TarEntry {
  /** The entry's content; read it fully or not at all before asking for the next entry. */
  body(): AsyncGenerator<Buffer>;
}

const TYPEFLAGS: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/** Strips `./` and `/` prefixes and trailing slashes: tar paths in tsbuild's canonical form. */
export function cleanTarPath(p: string): string {
  let s = p;
  while (s.startsWith('./') || s.startsWith('/')) s = s.startsWith('./') ? s.slice(2) : s.slice(1);
  while (s.endsWith('/')) s = s.slice(0, -1);
  return s === '.' ? '' : s;
}

/**
 * Reads a tar stream entry by entry, in bounded memory. Understands ustar, PAX (per-entry and global,
 * including SCHILY.xattr.* records) and GNU long names. Unknown entry types are skipped.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarReadEntry> {
  const reader = new ByteReader(source);
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = reader.readBuffered(BLOCK) ?? (await reader.read(BLOCK));
    if (block.length === 0) return; // tolerate archives without the end blocks
    if (block.length < BLOCK) throw new IntegrityError('tar archive is truncated (partial header block)');
    const h = decodeHeader(block);
    if (h === null) return;
    if (!h.checksumOk) throw new IntegrityError(`tar header checksum mismatch near "${h.path.slice(0, 100)}"`);
    const padded = Math.ceil(h.size / BLOCK) * BLOCK;
    if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
      const body = await reader.read(padded);
      if (body.length < padded) throw new IntegrityError('tar archive is truncated (extended header)');
      const data = body.subarray(0, h.size);
      if (h.typeflag === 'x') pax = parsePax(data);
      else if (h.typeflag === 'g') {
        // a global header's per-file records (path, linkpath, size) are ignored, as Docker does
        const g = parsePax(data);
        for (const k of ['path', 'linkpath', 'size']) g.delete(k);
        globalPax = new Map([...globalPax, ...g]);
      }
      else if (h.typeflag === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
      else longLink = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const ext = pax === undefined ? globalPax : globalPax.size === 0 ? pax : new Map([...globalPax, ...pax]);
    pax = undefined;
    const str = (k: string) => ext.get(k)?.toString('utf8');
    const num = (k: string, fallback: number) => (ext.has(k) ? Number(str(k)) : fallback);
    let path = str('path') ?? longName ?? h.path;
    const linkname = str('linkpath') ?? longLink ?? h.linkname;
    longName = longLink = undefined;
    let type = TYPEFLAGS[h.typeflag];
    if (type === 'file' && path.endsWith('/')) type = 'dir';
    const size = num('size', h.size);
    const dataSize = type === 'file' || type === undefined ? size : 0;
    const dataPadded = Math.ceil(dataSize / BLOCK) * BLOCK;
    if (type === undefined) {
      await reader.skip(dataPadded);
      continue;
    }
    let xattrs: Map<string, Buffer> | undefined;
    if (ext.size > 0) for (const [k, v] of ext) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      xattrs ??= new Map();
      xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
    path = cleanTarPath(path);
    let consumed = 0;
    let bodyUsed = false;
    const entry: TarReadEntry = {
      path,
      type,
      mode: h.mode,
      uid: num('uid', h.uid),
      gid: num('gid', h.gid),
      size: dataSize,
      mtime: ext.has('mtime') ? Math.floor(Number(str('mtime'))) : h.mtime,
      linkname: type === 'hardlink' ? cleanTarPath(linkname ?? '') : linkname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs,
      body: async function* () {
        if (bodyUsed) throw new Error(`body of ${path} read twice`);
        bodyUsed = true;
        // a small file is usually buffered whole, with its padding: one chunk, no waiting
        const whole = reader.readBuffered(dataPadded)?.subarray(0, dataSize);
        if (whole !== undefined) {
          consumed = dataPadded;
          if (dataSize > 0) yield whole;
          return;
        }
        for await (const c of reader.stream(dataSize)) {
          consumed += c.length;
          yield c;
        }
      },
    };
    yield entry;
    if (consumed === dataPadded && dataPadded > dataSize) continue; // read with its padding
    if (consumed < dataSize) consumed += await reader.skip(dataSize - consumed);
    if (consumed < dataSize) throw new IntegrityError(`tar archive is truncated (in "${path}")`);
    const pad = dataPadded - dataSize;
    if (pad > 0 && reader.readBuffered(pad) === undefined && (await reader.skip(pad)) < pad) throw new IntegrityError('tar archive is truncated');
  }
}

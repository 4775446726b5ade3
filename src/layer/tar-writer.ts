// Writing a layer tar: headers and file contents gathered into big chunks, hashed as they go out.
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import { TsbuildError } from '../errors.js';
import { dirFd } from '../fs/dir-fds.js';
import { native } from '../native/index.js';
import type { Digest } from '../util/digest.js';
import { DigestSink, put, type ByteSink } from '../util/sink.js';
import { BLOCK, encodeUstarInto, encodeWithPax, END_OF_ARCHIVE, type TarEntry } from './tar-format.js';

/** Bytes gathered before they go to the sink: one write and one hash update per chunk, not per entry. */
const CHUNK = 1 << 20;
/** Files up to this size are read straight into the chunk; bigger ones stream through on their own. */
const SMALL_FILE = 256 * 1024;

/** What a file must still be when it is opened to be archived (planned earlier by lstat). */
export interface Expected {
  dev: number;
  ino: number;
  /** The file must be `rel` inside this directory (the build context), reached through no symlink. */
  within?: { dir: string; rel: string };
}

export interface TarWriteResult {
  diffId: Digest;
  /** Bytes of the tar. */
  size: number;
}

/**
 * A layer tar written entry by entry, in bounded memory: headers are encoded, and small files read,
 * straight into a 1 MiB chunk that goes to the sink (and the digest) when full; a big file's content
 * streams through in chunks of its own. The bytes are exactly what encodeHeader and the files give.
 */
export class TarWriter {
  private readonly sink: DigestSink;
  private chunk = Buffer.alloc(CHUNK);
  private used = 0;

  constructor(out?: ByteSink) {
    this.sink = new DigestSink(out);
  }

  /** Hands the gathered bytes on; the chunk is the sink's from now on, so a new one is taken. */
  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.alloc(CHUNK);
    this.used = 0;
    await put(this.sink, full);
  }

  private async room(n: number): Promise<void> {
    if (this.used + n > CHUNK) await this.flush();
  }

  private async append(bytes: Buffer): Promise<void> {
    if (bytes.length > CHUNK) {
      await this.flush();
      await put(this.sink, bytes);
      return;
    }
    await this.room(bytes.length);
    bytes.copy(this.chunk, this.used);
    this.used += bytes.length;
  }

  /** An entry's header blocks (and, for a file, no content: follow with `content`). */
  async header(entry: TarEntry): Promise<void> {
    await this.room(BLOCK);
    if (encodeUstarInto(entry, this.chunk, this.used)) this.used += BLOCK;
    else await this.append(encodeWithPax(entry)); // the ustar fast path said no: the general one
  }

  /** A file's content already in memory, then the padding to a block. */
  async bytes(content: Buffer): Promise<void> {
    const padded = Math.ceil(content.length / BLOCK) * BLOCK;
    if (padded > CHUNK) {
      await this.append(content);
      if (padded > content.length) await this.append(Buffer.alloc(padded - content.length));
      return;
    }
    await this.room(padded);
    content.copy(this.chunk, this.used);
    this.chunk.fill(0, this.used + content.length, this.used + padded);
    this.used += padded;
  }

  /**
   * Exactly `size` bytes of a file, then the padding to a block. The file is opened without following
   * a final symlink and checked against what was planned (inode, size, and, for context files, that
   * it is still where it was inside the context): a file swapped for a link to a host file is an
   * error, not a leak.
   */
  async content(file: string, size: number, expected?: Expected): Promise<void> {
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (size > SMALL_FILE) {
      await this.bigContent(file, size, expected);
      if (padded > size) await this.append(Buffer.alloc(padded - size));
      return;
    }
    await this.room(padded);
    const root = expected?.within ? dirFd(expected.within.dir) : -1;
    const same = native().readFileInto(root, expected?.within?.rel ?? file, expected?.dev ?? -1, expected?.ino ?? -1, size, this.chunk, this.used);
    if (!same) throw new TsbuildError(`${file} changed while it was being ${expected ? 'copied' : 'archived'}`);
    this.chunk.fill(0, this.used + size, this.used + padded);
    this.used += padded;
  }

  /** A big file's content, streamed in chunks of its own after what is gathered. */
  private async bigContent(file: string, size: number, expected?: Expected): Promise<void> {
    await this.flush();
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      if (expected) {
        const st = fstatSync(fd);
        const real = readlinkSync(`/proc/self/fd/${fd}`);
        const inside = expected.within === undefined || real === `${expected.within.dir}/${expected.within.rel}`;
        if (st.ino !== expected.ino || st.dev !== expected.dev || st.size !== size || !inside) {
          throw new TsbuildError(`${file} changed while it was being copied`);
        }
      }
      for (let left = size; left > 0; ) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) throw new TsbuildError(`${file} shrank while it was being archived`);
        left -= n;
        await put(this.sink, n === buf.length ? buf : buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The end-of-archive blocks, everything handed on; the digest and size of all bytes written. */
  async end(): Promise<TarWriteResult> {
    await this.append(END_OF_ARCHIVE);
    await this.flush();
    return { diffId: this.sink.counter.digest(), size: this.sink.counter.size };
  }
}

// Byte sinks: files written on the thread pool, streams, digests.
import { closeSync, fdatasync, fsyncSync, openSync, write, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { DigestCounter } from './digest.js';

/**
 * Where produced bytes go. `write` may return a promise when the consumer needs time (a network
 * stream, a file with writes in flight); the caller awaits it before writing more. The caller must
 * not reuse a buffer after handing it to `write`: it may still be on its way.
 */
export interface ByteSink {
  write(chunk: Buffer): void | Promise<void>;
}

/** Writes a chunk and waits only when the sink asks to (no promise to settle for a synchronous write). */
export async function put(sink: ByteSink, chunk: Buffer): Promise<void> {
  const r = sink.write(chunk);
  if (r) await r;
}

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const FLUSH_EVERY = 32 << 20;

/** Chunks at least this big are written on libuv's thread pool, overlapping what produces the next. */
const ASYNC_WRITE_MIN = 256 * 1024;
const MAX_IN_FLIGHT = 4;

/**
 * Writes to a new file, every chunk at its own offset (pwrite): small chunks synchronously (the
 * fastest path for many tar headers), big ones on the thread pool, at most MAX_IN_FLIGHT at once,
 * so hashing or reading the next chunk overlaps writing this one. `write` returns a promise only
 * when the caller must wait; `close` waits for every write and reports the first failure.
 */
export class FileSink implements ByteSink {
  readonly fd: number;
  private offset = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private closed = false;
  private flushedTo = 0;
  private flushing: Promise<void> | undefined;

  /**
   * `durable`: the file will be fsynced at close; while it is written, what is already written is
   * flushed in the background every FLUSH_EVERY bytes, so the disk works while the rest is produced
   * and the final fsync has only the tail to wait for.
   */
  constructor(file: string, flags = 'wx', mode = 0o644, private readonly durable = false) {
    this.fd = openSync(file, flags, mode);
  }

  write(chunk: Buffer): void | Promise<void> {
    if (this.failure) throw this.failure;
    const position = this.offset;
    this.offset += chunk.length;
    if (chunk.length < ASYNC_WRITE_MIN) {
      for (let off = 0; off < chunk.length; ) off += writeSync(this.fd, chunk, off, chunk.length - off, position + off);
      return;
    }
    const done: Promise<void> = writeAll(this.fd, chunk, position)
      .catch((err: Error) => {
        this.failure ??= err;
      })
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
    if (this.durable && !this.flushing && this.offset - this.flushedTo >= FLUSH_EVERY) {
      const upTo = this.offset;
      this.flushing = Promise.all(this.inFlight)
        .then(() => fdatasyncAsync(this.fd))
        .then(
          () => {
            this.flushedTo = upTo;
          },
          (err: Error) => {
            this.failure ??= err;
          },
        )
        .finally(() => {
          this.flushing = undefined;
        });
    }
    if (this.inFlight.size >= MAX_IN_FLIGHT) return this.settleOne();
  }

  private async settleOne(): Promise<void> {
    await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Waits for every write, fsyncs when durable, and closes; throws the first write failure. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.inFlight);
    await this.flushing;
    this.closed = true;
    try {
      if (this.durable && !this.failure) fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
    if (this.failure) throw this.failure;
  }
}

async function writeAll(fd: number, chunk: Buffer, position: number): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    const { bytesWritten } = await writeAsync(fd, chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

/** Writes to a stream (standard output), waiting when it asks to; `end` waits until all is out. */
export class StreamSink implements ByteSink {
  private failure: Error | undefined;

  constructor(private readonly stream: Writable) {
    stream.on('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  write(chunk: Buffer): void | Promise<void> {
    if (this.failure) throw this.failure;
    if (this.stream.write(chunk)) return;
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
    });
  }

  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => this.stream.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
}

/** Hashes and counts what passes, then hands it on (or drops it when there is no next sink). */
export class DigestSink implements ByteSink {
  readonly counter = new DigestCounter();

  constructor(private readonly next?: ByteSink) {}

  write(chunk: Buffer): void | Promise<void> {
    this.counter.update(chunk);
    return this.next?.write(chunk);
  }
}

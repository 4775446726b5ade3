import { closeSync, openSync, writeSync, fsyncSync } from 'node:fs';
import { DigestCounter } from './digest.js';

/**
 * Where produced bytes go. `write` may return a promise when the consumer needs time (a network
 * stream); local files are written synchronously, which is the fastest path for many small entries.
 * The caller must not reuse a buffer after handing it to `write`.
 */
export interface ByteSink {
  write(chunk: Buffer): void | Promise<void>;
}

/** Writes to a file descriptor, synchronously. */
export class FileSink implements ByteSink {
  private readonly fd: number;
  private closed = false;

  constructor(file: string, flags = 'wx', mode = 0o644) {
    this.fd = openSync(file, flags, mode);
  }

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  close(sync = false): void {
    if (this.closed) return;
    this.closed = true;
    if (sync) fsyncSync(this.fd);
    closeSync(this.fd);
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

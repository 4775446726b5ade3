// Content-addressed blobs, verified when read.
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { DigestCounter, hexOf, sha256, type Digest } from '../util/digest.js';
import { put, type ByteSink } from '../util/sink.js';
import { writeFileAtomic } from './atomic.js';

/**
 * Content-addressed blobs: configs, manifests and layer tars, each at blobs/sha256/<hex>.
 * Written atomically; every read is verified against the name.
 */
export class BlobStore {
  constructor(readonly dir: string) {}

  path(digest: Digest): string {
    return path.join(this.dir, 'sha256', hexOf(digest));
  }

  has(digest: Digest): boolean {
    return existsSync(this.path(digest));
  }

  size(digest: Digest): number {
    return statSync(this.path(digest)).size;
  }

  putBytes(data: Buffer): Digest {
    const digest = sha256(data);
    if (!this.has(digest)) writeFileAtomic(this.path(digest), data);
    return digest;
  }

  /** Moves a file whose digest the caller computed while writing it into the store. */
  adopt(file: string, digest: Digest): void {
    if (this.has(digest)) rmSync(file, { force: true });
    else renameSync(file, this.path(digest));
  }

  readBytes(digest: Digest): Buffer {
    const data = readFileSync(this.path(digest));
    if (sha256(data) !== digest) throw new IntegrityError(`blob ${digest} in the store is corrupt (content does not match its digest)`);
    return data;
  }

  readJson<T>(digest: Digest): T {
    return JSON.parse(this.readBytes(digest).toString()) as T;
  }

  /** A blob's bytes, failing (after the last byte) if they do not match its digest. */
  async *stream(digest: Digest): AsyncGenerator<Buffer> {
    const counter = new DigestCounter();
    for await (const chunk of createReadStream(this.path(digest), { highWaterMark: 1 << 20 })) {
      counter.update(chunk as Buffer);
      yield chunk as Buffer;
    }
    if (counter.digest() !== digest) throw new IntegrityError(`blob ${digest} in the store is corrupt (content does not match its digest)`);
  }

  /** Streams a blob into a sink, failing (after the last byte) if it does not match its digest. */
  async copyTo(digest: Digest, sink: ByteSink): Promise<void> {
    for await (const chunk of this.stream(digest)) await put(sink, chunk);
  }

  remove(digest: Digest): void {
    rmSync(this.path(digest), { force: true });
  }
}

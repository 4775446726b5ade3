// Layers' gzip forms, made once and kept.
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { IntegrityError } from '../errors.js';
import { PARALLEL_GZIP_ENCODER, ParallelGzip } from '../layer/parallel-gzip.js';
import { DigestCounter, hexOf, isDigest, type Digest } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';

/** A compressed form of a layer, kept as a blob: what archives and registries carry. */
export interface CompressedLayer {
  diffId: Digest;
  algorithm: 'gzip';
  level: number;
  /** What compressed it (PARALLEL_GZIP_ENCODER): another encoder may compress the same bytes differently. */
  encoder: string;
  digest: Digest;
  size: number;
}

/**
 * compressed/<diffID hex>.gzip-<level>.json → the gzip blob of that layer. Made on first use
 * and reused: a warm rebuild with `-o type=docker,compression=gzip` copies instead of compressing.
 * The deflating runs on libuv's thread pool (ParallelGzip), in parallel and off the main thread.
 */
export class CompressedLayers {
  constructor(
    private readonly store: Store,
    readonly dir = path.join(store.root, 'compressed'),
  ) {}

  private file(diffId: Digest, level: number): string {
    return path.join(this.dir, `${hexOf(diffId)}.gzip-${level}.json`);
  }

  /** Every record, for prune and fsck. */
  list(): Array<{ file: string; record: CompressedLayer | undefined }> {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => ({ file: path.join(this.dir, f), record: readJsonIfAny<CompressedLayer>(path.join(this.dir, f)) }));
  }

  remove(file: string): void {
    rmSync(file, { force: true });
  }

  /** The layer's gzip blob at `level`, compressing it now if the store has none made by this encoder. */
  async gzip(layer: LayerMeta, level: number, work: string): Promise<CompressedLayer> {
    const file = this.file(layer.diffId, level);
    const made = readJsonIfAny<CompressedLayer>(file);
    if (made?.encoder === PARALLEL_GZIP_ENCODER && isDigest(made.digest) && this.store.blobs.has(made.digest)) {
      if (this.store.blobs.size(made.digest) === made.size) return made;
      this.store.blobs.remove(made.digest); // cut short (it is not fsynced): made again, not failing every export
    }
    const blobFile = path.join(work, `${hexOf(layer.diffId)}.gz`);
    const out = new FileSink(blobFile);
    const counter = new DigestCounter();
    const gzip = new ParallelGzip({ write: (c) => (counter.update(c), out.write(c)) }, level);
    try {
      await this.store.layers.writeTar(layer.chainId, gzip);
      await gzip.end();
    } finally {
      await out.close();
    }
    const rec: CompressedLayer = { diffId: layer.diffId, algorithm: 'gzip', level, encoder: PARALLEL_GZIP_ENCODER, digest: counter.digest(), size: counter.size };
    this.store.blobs.adopt(blobFile, rec.digest);
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(file, JSON.stringify(rec), 0o644, false);
    return rec;
  }

  /** fsck: the blob must decompress to exactly the layer tar its diffID names. */
  async verify(rec: CompressedLayer): Promise<void> {
    const counter = new DigestCounter();
    try {
      await pipeline(createReadStream(this.store.blobs.path(rec.digest)), createGunzip(), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) counter.update(chunk);
      });
    } catch (err) {
      throw new IntegrityError(`compressed layer ${rec.digest} of ${rec.diffId} is corrupt: ${(err as Error).message}`, { cause: err });
    }
    if (counter.digest() !== rec.diffId) throw new IntegrityError(`compressed layer ${rec.digest} does not decompress to layer ${rec.diffId}`);
  }
}

// Layers' gzip forms, made once and kept.
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { decompressed } from '../layer/decompress.js';
import { IntegrityError } from '../errors.js';
import { PARALLEL_GZIP_ENCODER, ParallelGzip } from '../layer/parallel-gzip.js';
import { DigestCounter, hexOf, isDigest, type Digest } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';

/** A compressed form of a layer, kept as a blob: what archives and registries carry. */
export type Algorithm = 'gzip' | 'zstd';

/** The encoder of a blob kept as a registry served it. */
const PULLED = 'as pulled';

export interface CompressedLayer {
  diffId: Digest;
  algorithm: Algorithm;
  level: number;
  /** What compressed it (PARALLEL_GZIP_ENCODER, ZSTD_ENCODER): another encoder may compress the same bytes differently. */
  encoder: string;
  digest: Digest;
  size: number;
}

/**
 * compressed/<diffID hex>.<gzip|zstd>-<level>.json → the compressed blob of that layer. Made on
 * first use and reused: a warm rebuild with `-o type=docker,compression=gzip` copies instead of
 * compressing, a second push of a layer uploads what the first made. gzip's deflating runs on
 * libuv's thread pool (ParallelGzip), zstd's on zstd's own workers, off the main thread.
 */
export class CompressedLayers {
  constructor(
    private readonly store: Store,
    readonly dir = path.join(store.root, 'compressed'),
  ) {}

  /** `<diffID hex>.gzip-6.json`; a pulled blob's is `<diffID hex>.gzip-pulled.json`. */
  private file(diffId: Digest, algorithm: Algorithm, level: number): string {
    return path.join(this.dir, `${hexOf(diffId)}.${algorithm}-${level < 0 ? 'pulled' : level}.json`);
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
  gzip(layer: LayerMeta, level: number, work: string): Promise<CompressedLayer> {
    return this.compressed(layer, 'gzip', level, work);
  }

  /** The layer's zstd blob at `level`, likewise. */
  zstd(layer: LayerMeta, level: number, work: string): Promise<CompressedLayer> {
    return this.compressed(layer, 'zstd', level, work);
  }

  /**
   * Keeps a layer's blob as a registry served it (checked against its digest by the caller): pushing
   * or exporting the layer in that compression then sends those bytes, as BuildKit reuses a base
   * image's blobs, and a copy to another registry keeps the layer's digest.
   */
  keepPulled(diffId: Digest, algorithm: Algorithm, file: string, digest: Digest, size: number): void {
    this.store.blobs.adopt(file, digest);
    mkdirSync(this.dir, { recursive: true });
    const rec: CompressedLayer = { diffId, algorithm, level: -1, encoder: PULLED, digest, size };
    writeFileAtomic(this.file(diffId, algorithm, -1), JSON.stringify(rec), 0o644, false);
  }

  private async compressed(layer: LayerMeta, algorithm: Algorithm, level: number, work: string): Promise<CompressedLayer> {
    const pulled = readJsonIfAny<CompressedLayer>(this.file(layer.diffId, algorithm, -1));
    if (pulled?.encoder === PULLED && isDigest(pulled.digest) && this.store.blobs.has(pulled.digest)) return pulled;
    const file = this.file(layer.diffId, algorithm, level);
    const made = readJsonIfAny<CompressedLayer>(file);
    const { ZSTD_ENCODER, ZstdEncoder } = algorithm === 'zstd' ? await import('../layer/zstd.js') : { ZSTD_ENCODER: '', ZstdEncoder: undefined };
    const encoder = algorithm === 'zstd' ? ZSTD_ENCODER : PARALLEL_GZIP_ENCODER;
    if (made?.encoder === encoder && isDigest(made.digest) && this.store.blobs.has(made.digest)) {
      if (this.store.blobs.size(made.digest) === made.size) return made;
      this.store.blobs.remove(made.digest); // cut short (it is not fsynced): made again, not failing every export
    }
    const blobFile = path.join(work, `${hexOf(layer.diffId)}.${algorithm}`);
    const out = new FileSink(blobFile);
    const counter = new DigestCounter();
    const next = { write: (c: Buffer) => (counter.update(c), out.write(c)) };
    const compressor = ZstdEncoder ? new ZstdEncoder(next, level) : new ParallelGzip(next, level);
    try {
      await this.store.layers.writeTar(layer.chainId, compressor);
      await compressor.end();
    } finally {
      await out.close();
    }
    const rec: CompressedLayer = { diffId: layer.diffId, algorithm, level, encoder, digest: counter.digest(), size: counter.size };
    this.store.blobs.adopt(blobFile, rec.digest);
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(file, JSON.stringify(rec), 0o644, false);
    return rec;
  }

  /** fsck: the blob must decompress to exactly the layer tar its diffID names. */
  async verify(rec: CompressedLayer): Promise<void> {
    const counter = new DigestCounter();
    try {
      for await (const chunk of decompressed(createReadStream(this.store.blobs.path(rec.digest)))) counter.update(chunk);
    } catch (err) {
      throw new IntegrityError(`compressed layer ${rec.digest} of ${rec.diffId} is corrupt: ${(err as Error).message}`, { cause: err });
    }
    if (counter.digest() !== rec.diffId) throw new IntegrityError(`compressed layer ${rec.digest} does not decompress to layer ${rec.diffId}`);
  }
}

// A layer blob's compression detected and undone.
import { Readable } from 'node:stream';
import { coalesced } from '../util/chunks.js';
import { createGunzip } from 'node:zlib';
import { IntegrityError, TsbuildError } from '../errors.js';
import { zstdDecompressed } from './zstd.js';

async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  for await (const c of stream) yield c as Buffer;
}

/** A zstd frame's magic number, or a skippable frame's (0x184D2A50 to 0x184D2A5F), little-endian. */
function isZstd(head: Buffer): boolean {
  if (head.length < 4) return false;
  const magic = head.readUInt32LE(0);
  return magic === 0xfd2fb528 || (magic & 0xfffffff0) === 0x184d2a50;
}

/** A blob's compression from its first bytes (gzip's or zstd's magic number), undefined for anything else. */
export function compressionOfBytes(head: Buffer): 'gzip' | 'zstd' | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return isZstd(head) ? 'zstd' : undefined;
}

/**
 * Detects a layer's compression from its first bytes and yields the uncompressed tar: plain tar,
 * gzip and zstd (its library is loaded only when a zstd stream comes) are read; bzip2 and xz are
 * named in a clear error.
 */
export async function* decompressed(source: Readable): AsyncGenerator<Buffer> {
  const it = chunksOf(source);
  let head = Buffer.alloc(0);
  const pending: Buffer[] = [];
  while (head.length < 6) {
    const r = await it.next();
    if (r.done) break;
    pending.push(r.value);
    head = Buffer.concat([head, r.value]);
  }
  async function* replay(): AsyncGenerator<Buffer> {
    yield* pending;
    yield* it;
  }
  const compression = compressionOfBytes(head);
  if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 1 << 20 }); // big output chunks: fewer callbacks, and file writes off the main thread
    const input = Readable.from(coalesced(replay(), 1 << 20), { highWaterMark: 2 }); // 2 MiB in flight, whatever the layer
    input.on('error', (err) => gunzip.destroy(err));
    input.pipe(gunzip);
    try {
      for await (const c of gunzip) yield c as Buffer;
    } catch (err) {
      if (err instanceof TsbuildError) throw err; // the source's own failure (a blob that does not match its digest)
      throw new IntegrityError(`corrupt gzip data: ${(err as Error).message}`, { cause: err });
    }
    return;
  }
  if (compression === 'zstd') {
    yield* zstdDecompressed(replay());
    return;
  }
  if (head.subarray(0, 3).toString('latin1') === 'BZh') throw new TsbuildError('bzip2-compressed layers are not supported yet');
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) throw new TsbuildError('xz-compressed layers are not supported yet');
  yield* replay();
}

// A layer blob's compression detected and undone.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { IntegrityError, TsbuildError } from '../errors.js';

async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  for await (const c of stream) yield c as Buffer;
}

/**
 * Detects a layer's compression from its first bytes and yields the uncompressed tar: plain tar
 * and gzip are read; zstd, bzip2 and xz are named in a clear error.
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
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    const input = Readable.from(replay());
    input.on('error', (err) => gunzip.destroy(err));
    input.pipe(gunzip);
    try {
      for await (const c of gunzip) yield c as Buffer;
    } catch (err) {
      throw new IntegrityError(`corrupt gzip data: ${(err as Error).message}`, { cause: err });
    }
    return;
  }
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) throw new TsbuildError('zstd-compressed layers are not supported yet');
  if (head.subarray(0, 3).toString('latin1') === 'BZh') throw new TsbuildError('bzip2-compressed layers are not supported yet');
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) throw new TsbuildError('xz-compressed layers are not supported yet');
  yield* replay();
}

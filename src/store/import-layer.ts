// A layer tar added to the store in one pass: hashed, kept, extracted.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';
import { chainIdOf } from '../image/chain-id.js';
import { applyLayer } from '../layer/apply.js';
import { decompressed } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
import { DigestCounter, type Digest } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';

/**
 * Adds a layer tar (plain or gzip) to the store in one pass: the uncompressed bytes are hashed
 * (diffID), written as a blob, and extracted into an overlay-form directory at the same time.
 * `expected` is checked before anything is committed.
 */
export async function importLayer(store: Store, source: Readable, parent: Digest | undefined, expected?: Digest): Promise<LayerMeta> {
  const work = store.makeTemp('layer');
  try {
    const staged = path.join(work, 'layer');
    const diff = path.join(staged, 'diff');
    mkdirSync(diff, { recursive: true });
    const blobFile = path.join(work, 'blob');
    const blob = new FileSink(blobFile);
    const counter = new DigestCounter();
    const tapped = (async function* () {
      for await (const c of decompressed(source)) {
        counter.update(c);
        await blob.write(c);
        yield c;
      }
    })();
    let contentSize: number;
    try {
      ({ contentSize } = await applyLayer(readTar(tapped), diff, await store.layers.parentAttrs(parent, work)));
      for await (const _ of tapped); // bytes after the end-of-archive blocks count toward the diffID
    } finally {
      await blob.close();
    }
    const diffId = counter.digest();
    if (expected && diffId !== expected) {
      throw new IntegrityError(`layer content does not match its diffID: expected ${expected}, got ${diffId}`);
    }
    const chainId = chainIdOf(parent, diffId);
    if (store.layers.has(chainId)) return store.layers.meta(chainId);
    await store.layers.recordFiles(diff, staged);
    store.blobs.adopt(blobFile, diffId);
    return store.layers.commit(staged, { chainId, diffId, parent, size: counter.size, contentSize, blob: diffId });
  } finally {
    store.removeTemp(work);
  }
}

// A layer tar added to the store in one pass: hashed, kept, extracted.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';
import { chainIdOf } from '../image/chain-id.js';
import { applyLayer } from '../layer/apply.js';
import { decompressed } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
import { DigestCounter, hexOf, type Digest } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';

/** A layer's uncompressed bytes as they pass: hashed (its diffID) and written as its blob. */
async function* hashedAndWritten(source: Readable, counter: DigestCounter, blob: FileSink): AsyncGenerator<Buffer> {
  for await (const c of decompressed(source)) {
    counter.update(c);
    await blob.write(c);
    yield c;
  }
}

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
    const tapped = hashedAndWritten(source, counter, blob);
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
    store.blobs.adopt(blobFile, diffId);
    return store.layers.commit(staged, { chainId, diffId, parent, size: counter.size, contentSize, blob: diffId });
  } finally {
    store.removeTemp(work);
  }
}

/** A layer tar written as a blob in temp space, hashed and checked, ready for commitLayerBlob. */
export interface StagedLayer {
  file: string;
  diffId: Digest;
  size: number;
  contentSize: number;
}

/**
 * Writes a layer (gzip, zstd or plain) into `work` as an uncompressed blob, in one pass: hashed
 * (diffID), written, and read as a tar (its entries checked, its file bytes counted) without being
 * extracted; extraction waits until a step first needs the layer's files. `expected` is checked.
 */
export async function stageLayerBlob(source: Readable, work: string, expected: Digest): Promise<StagedLayer> {
  const file = path.join(work, `${hexOf(expected)}.tar`);
  const blob = new FileSink(file);
  const counter = new DigestCounter();
  const tapped = hashedAndWritten(source, counter, blob);
  let contentSize = 0;
  try {
    for await (const e of readTar(tapped)) {
      if (e.type === 'file') contentSize += e.size;
      for await (const _ of e.body());
    }
    for await (const _ of tapped); // bytes after the end-of-archive blocks count toward the diffID
  } finally {
    await blob.close();
  }
  const diffId = counter.digest();
  if (diffId !== expected) throw new IntegrityError(`layer content does not match its diffID: expected ${expected}, got ${diffId}`);
  return { file, diffId, size: counter.size, contentSize };
}

/** Records a staged layer blob under its chain ID (its parent must be in the store already); `created`: when a build first made it. */
export function commitLayerBlob(store: Store, staged: StagedLayer, parent: Digest | undefined, work: string, created?: string): LayerMeta {
  const chainId = chainIdOf(parent, staged.diffId);
  if (store.layers.has(chainId)) return store.layers.meta(chainId);
  const dir = path.join(work, `layer-${hexOf(chainId)}`);
  mkdirSync(dir);
  store.blobs.adopt(staged.file, staged.diffId);
  return store.layers.commit(dir, { chainId, diffId: staged.diffId, parent, size: staged.size, contentSize: staged.contentSize, blob: staged.diffId, ...(created ? { created } : {}) });
}

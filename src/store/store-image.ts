// A stored image as an Image.
import type { CompressedBlob, Image, Layer } from '../image/image.js';
import { CompressedLayers, type Algorithm } from './compressed-layers.js';
import type { LayerMeta } from './layers.js';
import type { StoredImage } from './stored-image.js';
import type { Store } from './store.js';

/** A stored layer's compressed form, made once and kept (CompressedLayers). */
async function compressed(store: Store, meta: LayerMeta, algorithm: Algorithm, level: number): Promise<CompressedBlob> {
  const work = store.makeTemp('compress');
  try {
    const made = await new CompressedLayers(store)[algorithm](meta, level, work);
    return { digest: made.digest, size: made.size, write: (sink) => store.blobs.copyTo(made.digest, sink) };
  } finally {
    store.removeTemp(work);
  }
}

/** A stored layer as a Layer: its tar from the store (checked), its gzip form kept in the store. */
export function storeLayer(store: Store, meta: LayerMeta): Layer {
  return {
    diffId: meta.diffId,
    size: meta.size,
    uncompressed: (sink) => store.layers.writeTar(meta.chainId, sink),
    gzip: (level) => compressed(store, meta, 'gzip', level),
    zstd: (level) => compressed(store, meta, 'zstd', level),
  };
}

/** A stored image as an Image. Callers hold the store in use (Store.inUse) while they read it. */
export function storeImage(store: Store, img: StoredImage): Image {
  return {
    id: img.id,
    configBytes: img.configBytes,
    config: img.config,
    layers: img.layers.map((l) => storeLayer(store, l)),
    manifest: { bytes: store.blobs.readBytes(img.manifestDigest), digest: img.manifestDigest },
  };
}

// Image and Layer as interfaces, as go-containerregistry's v1.Image and v1.Layer.
import type { Digest } from '../util/digest.js';
import type { ByteSink } from '../util/sink.js';
import type { ImageConfig } from './config.js';

/** A compressed form of a layer: what archives and registries carry. */
export interface CompressedBlob {
  digest: Digest;
  size: number;
  /** Streams the compressed bytes, checked against `digest`. */
  write(sink: ByteSink): Promise<void>;
}

/**
 * A layer, wherever it lives (the store, a registry, an archive), as go-containerregistry's
 * v1.Layer: its diffID and size, its uncompressed tar as a stream, and a compressed form on demand.
 */
export interface Layer {
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Streams the uncompressed tar, checked against `diffId`. */
  uncompressed(sink: ByteSink): Promise<void>;
  /** The layer gzipped at `level` (made now if its owner has none). */
  gzip(level: number): Promise<CompressedBlob>;
  /** The layer zstd-compressed at `level`, where its owner can make it. */
  zstd?(level: number): Promise<CompressedBlob>;
}

/**
 * An image, as go-containerregistry's v1.Image: its config (whose digest is the image ID) and its
 * layers, bottom first. Writers (archives, registry pushes) take any Image, not only a stored one.
 */
export interface Image {
  id: Digest;
  configBytes: Buffer;
  config: ImageConfig;
  layers: Layer[];
  /** The OCI manifest over its uncompressed layers, when its owner keeps one (the store does). */
  manifest?: { bytes: Buffer; digest: Digest };
}

// Pushing an Image to a registry: blobs it has are skipped, blobs of another repository mounted, the rest uploaded, then the manifest.
import { PassThrough, type Readable } from 'node:stream';
import { UsageError } from '../errors.js';
import type { CompressedBlob, Image, Layer } from '../image/image.js';
import { layerCompression, MEDIA_TYPES, type Descriptor, type Manifest } from '../image/manifest.js';
import type { ImageReference } from '../image/reference.js';
import { LayerSources, type LayerSource } from '../store/layer-sources.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';
import { forEachLimited } from '../util/limit.js';
import { StreamSink, type ByteSink } from '../util/sink.js';
import type { RegistryOptions } from './hosts.js';
import { RegistryRepository } from './repository.js';

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

/** Layers uploaded at once (dockerd's default is 5). */
const PARALLEL_UPLOADS = 4;

export interface PushOptions {
  registry: RegistryOptions;
  /** New layers' compression (BuildKit's `compression=`); default gzip. */
  compression?: Compression;
  compressionLevel?: number;
  /** OCI media types (BuildKit's `oci-mediatypes=true`); zstd implies them. Default: Docker's, as `docker push`. */
  ociMediaTypes?: boolean;
  /** Upload in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number;
  /** How each layer went: `Pushed`, `Layer already exists`, `Mounted from library/busybox`. */
  onLayer?: (digest: Digest, what: string) => void;
}

export interface PushResult {
  digest: Digest;
  size: number;
  /** The manifest as pushed. */
  manifest: Manifest;
}

/** A producer of bytes (a blob's `write`) as a stream to send, with backpressure. */
function streamOf(write: (sink: ByteSink) => Promise<void>): Readable {
  const pass = new PassThrough({ highWaterMark: 1 << 20 });
  write(new StreamSink(pass)).then(
    () => pass.end(),
    (err: Error) => pass.destroy(err),
  );
  return pass;
}

/** A layer's blob in the compression asked for, made (and kept) by the layer's owner when needed. */
async function compressedBlob(layer: Layer, compression: Compression, level: number): Promise<CompressedBlob> {
  if (compression === 'uncompressed') return { digest: layer.diffId, size: layer.size, write: (sink) => layer.uncompressed(sink) };
  if (compression === 'zstd') {
    if (!layer.zstd) throw new UsageError('this image source cannot give zstd layers');
    return layer.zstd(level);
  }
  return layer.gzip(level);
}

function layerMediaType(compression: Compression, oci: boolean): string {
  if (compression === 'zstd') return MEDIA_TYPES.ociLayerZstd;
  if (compression === 'uncompressed') return oci ? MEDIA_TYPES.ociLayer : MEDIA_TYPES.dockerLayer;
  return oci ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.dockerLayerGzip;
}

/** What pushLayers needs to know: the new layers' compression and media types, and who to tell. */
export type LayerPushOptions = Pick<PushOptions, 'compression' | 'compressionLevel' | 'ociMediaTypes' | 'chunkSize' | 'onLayer'>;

/**
 * Puts layers into a repository, PARALLEL_UPLOADS at once: each is skipped when the repository has
 * it (HEAD), mounted when another repository of the registry has it (a pull or push recorded where),
 * else compressed (the store keeps what it made) and uploaded. Returns their descriptors, in order.
 */
export async function pushLayers(store: Store, repo: RegistryRepository, layers: readonly Layer[], opts: LayerPushOptions): Promise<Descriptor[]> {
  const compression = opts.compression ?? 'gzip';
  const level = opts.compressionLevel ?? 6;
  const mediaType = layerMediaType(compression, opts.ociMediaTypes ?? compression === 'zstd');
  const sources = new LayerSources(store);
  const here = { domain: repo.domain, repository: repo.path };
  const descriptors: Descriptor[] = new Array(layers.length);
  const done = new Map<Digest, Promise<Descriptor>>(); // a layer listed twice is pushed once

  const pushLayer = async (layer: Layer): Promise<Descriptor> => {
    const known = sources.of(layer.diffId).filter((s) => s.domain === repo.domain && layerCompression(s.mediaType) === compression);
    known.sort((a, b) => Number(b.repository === repo.path) - Number(a.repository === repo.path));
    for (const s of known) {
      const how = s.repository === repo.path ? ((await repo.hasBlob(s.digest)) ? 'Layer already exists' : undefined) : (await repo.mountBlob(s.digest, s.repository)) ? `Mounted from ${s.repository}` : undefined;
      if (how) {
        opts.onLayer?.(s.digest, how);
        remember(sources, layer.diffId, { ...s, ...here });
        return { mediaType, digest: s.digest, size: s.size };
      }
    }
    const blob = await compressedBlob(layer, compression, level);
    if (await repo.hasBlob(blob.digest)) opts.onLayer?.(blob.digest, 'Layer already exists');
    else {
      await repo.upload(blob.digest, blob.size, () => streamOf((sink) => blob.write(sink)), opts.chunkSize);
      opts.onLayer?.(blob.digest, 'Pushed');
    }
    remember(sources, layer.diffId, { ...here, digest: blob.digest, size: blob.size, mediaType });
    return { mediaType, digest: blob.digest, size: blob.size };
  };

  await forEachLimited(layers.map((l, i) => [l, i] as const), PARALLEL_UPLOADS, async ([layer, i]) => {
    let p = done.get(layer.diffId);
    if (!p) done.set(layer.diffId, (p = pushLayer(layer)));
    descriptors[i] = await p;
  });
  return descriptors;
}

/** Puts a small blob (a config) into a repository unless it has it. */
export async function pushSmallBlob(repo: RegistryRepository, digest: Digest, bytes: Buffer): Promise<void> {
  if (!(await repo.hasBlob(digest))) await repo.upload(digest, bytes.length, () => streamOf(async (sink) => void (await sink.write(bytes))));
}

/**
 * Pushes an image under `ref` (a tag): its layers (pushLayers), its config, then the manifest,
 * with the store held in use (prune waits). Returns the manifest's digest, as `docker push` prints it.
 */
export async function pushImage(store: Store, image: Image, ref: ImageReference, opts: PushOptions): Promise<PushResult> {
  if (!ref.tag) throw new UsageError(`cannot push to ${ref.domain}/${ref.path}@${ref.digest}: push needs a tag`);
  return store.inUse(() => pushLocked(store, image, ref as ImageReference & { tag: string }, opts));
}

async function pushLocked(store: Store, image: Image, ref: ImageReference & { tag: string }, opts: PushOptions): Promise<PushResult> {
  const repo = new RegistryRepository(ref.domain, ref.path, opts.registry, 'push');
  const oci = opts.ociMediaTypes ?? opts.compression === 'zstd';
  const layers = await pushLayers(store, repo, image.layers, opts);
  await pushSmallBlob(repo, image.id, image.configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: oci ? MEDIA_TYPES.ociManifest : MEDIA_TYPES.dockerManifest,
    config: { mediaType: oci ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig, digest: image.id, size: image.configBytes.length },
    layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const digest = await repo.putManifest(ref.tag, bytes, manifest.mediaType);
  return { digest, size: bytes.length, manifest };
}

function remember(sources: LayerSources, diffId: Digest, source: LayerSource): void {
  try {
    sources.add(diffId, source);
  } catch {
    // a record that could not be written only costs a HEAD or an upload next time
  }
}

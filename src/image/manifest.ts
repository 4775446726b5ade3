// OCI and Docker manifests, indexes, descriptors and media types.
import type { Digest } from '../util/digest.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** A layer media type's compression (`…tar+gzip`, `…tar.gzip`, `…tar+zstd`, else a plain tar). */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'uncompressed' {
  if (mediaType.endsWith('zstd')) return 'zstd';
  if (mediaType.endsWith('gzip')) return 'gzip';
  return 'uncompressed';
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** An OCI manifest for uncompressed layers, the form tsbuild stores and `docker save` writes. */
export function makeManifest(config: { digest: Digest; size: number }, layers: Array<{ digest: Digest; size: number }>): Manifest {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.ociLayer, digest: l.digest, size: l.size })),
  };
}

export function serializeManifest(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m));
}

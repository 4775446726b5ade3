// Image archives: one tarball that is a docker-archive and an OCI layout, of any Image.
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarEntry } from '../layer/tar-format.js';
import os from 'node:os';
import { MEDIA_TYPES, serializeManifest, type Descriptor, type Index, type Manifest } from '../image/manifest.js';
import type { CompressedBlob, Image, Layer } from '../image/image.js';
import { forEachLimited } from '../util/limit.js';
import type { Compression } from './output-spec.js';
import { familiarName, familiarRepository, parseReference } from '../image/reference.js';
import { lockWhileWriting, removeDeadSiblings, tempSibling } from '../store/atomic.js';
import { hexOf, sha256, type Digest } from '../util/digest.js';
import { FileSink, put, StreamSink, type ByteSink } from '../util/sink.js';

export interface ArchiveImage {
  /** Any image: one from the store (store/store-image.ts), or from elsewhere. */
  image: Image;
  /** Names as the user gave them; written normalised into index.json, familiar into manifest.json. */
  names: string[];
}

const EPOCH = 0;

function fileEntry(name: string, size: number): TarEntry {
  return { path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: EPOCH };
}

async function putFile(sink: ByteSink, name: string, data: Buffer): Promise<void> {
  await put(sink, encodeHeader(fileEntry(name, data.length)));
  await put(sink, data);
  await put(sink, paddingFor(data.length));
}

export interface ArchiveOptions {
  /** docker (the default): also manifest.json and repositories, for `docker load`; oci: the layout alone. */
  format?: 'docker' | 'oci';
  compression?: Compression;
  /** OCI (the default) or Docker media types in the manifest. */
  mediaTypes?: 'oci' | 'docker';
  /** Layers compressed at once, at most 4 (default: the number of CPUs). */
  jobs?: number;
}

/** One layer as the archive carries it: its descriptor, and how to stream its bytes. */
interface ArchiveLayer {
  descriptor: Descriptor;
  write(sink: ByteSink): Promise<void>;
}

/** An image as the archive carries it: its layers and manifest in the archive's compression. */
interface ArchivedImage extends ArchiveImage {
  layers: ArchiveLayer[];
  manifestBytes: Buffer;
  manifestDigest: Digest;
}

/**
 * Writes images as one tarball that is both a docker-archive (manifest.json, repositories) and an
 * OCI image layout (oci-layout, index.json, blobs/sha256/), as `docker save` does since Docker 25.
 * The file appears only when complete. `dest` '-' writes to standard output.
 */
export async function writeImageArchive(images: ArchiveImage[], dest: string, opts: ArchiveOptions = {}): Promise<void> {
  if (dest === '-') {
    const sink = new StreamSink(process.stdout);
    await writeArchiveTo(images, sink, opts);
    await sink.end();
    return;
  }
  removeDeadSiblings(path.resolve(dest));
  const tmp = tempSibling(path.resolve(dest));
  const sink = new FileSink(tmp, 'wx', 0o644, true);
  lockWhileWriting(sink.fd);
  try {
    await writeArchiveTo(images, sink, opts);
    await sink.close();
    renameSync(tmp, dest);
  } catch (err) {
    await sink.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The manifest, config and layer media types of each kind. */
const KINDS = {
  oci: { manifest: MEDIA_TYPES.ociManifest, config: MEDIA_TYPES.ociConfig, layer: MEDIA_TYPES.ociLayer, layerGzip: MEDIA_TYPES.ociLayerGzip },
  docker: { manifest: MEDIA_TYPES.dockerManifest, config: MEDIA_TYPES.dockerConfig, layer: MEDIA_TYPES.dockerLayer, layerGzip: MEDIA_TYPES.dockerLayerGzip },
} as const;

/** The gzip form of every distinct layer of the images (made now, a few layers at once, when missing). */
async function gzipLayers(images: ArchiveImage[], level: number, jobs: number): Promise<Map<string, CompressedBlob>> {
  const unique = new Map<string, Layer>();
  for (const img of images) for (const l of img.image.layers) unique.set(l.diffId, l);
  const made = new Map<string, CompressedBlob>();
  // each layer keeps every thread busy once it is big; small ones overlap their setup and I/O
  await forEachLimited([...unique.values()], Math.min(4, jobs), async (l) => {
    made.set(l.diffId, await l.gzip(level));
  });
  return made;
}

/**
 * The images' layers in the archive's form: uncompressed, each checked against its diffID, or
 * gzipped. The image's own manifest (OCI, uncompressed) serves when it fits; otherwise the archive
 * gets a manifest of its own. The image ID (the config) is the same either way.
 */
async function archivedImages(images: ArchiveImage[], opts: ArchiveOptions): Promise<ArchivedImage[]> {
  const kind = KINDS[opts.mediaTypes ?? 'oci'];
  const gzipped = opts.compression ? await gzipLayers(images, opts.compression.level, opts.jobs ?? os.availableParallelism()) : undefined;
  return images.map((img) => {
    const layers: ArchiveLayer[] = img.image.layers.map((l) => {
      const c = gzipped?.get(l.diffId);
      return c
        ? { descriptor: { mediaType: kind.layerGzip, digest: c.digest, size: c.size }, write: (sink) => c.write(sink) }
        : { descriptor: { mediaType: kind.layer, digest: l.diffId, size: l.size }, write: (sink) => l.uncompressed(sink) };
    });
    if (!gzipped && kind === KINDS.oci && img.image.manifest) {
      return { ...img, layers, manifestBytes: img.image.manifest.bytes, manifestDigest: img.image.manifest.digest };
    }
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: kind.manifest,
      config: { mediaType: kind.config, digest: img.image.id, size: img.image.configBytes.length },
      layers: layers.map((l) => l.descriptor),
    };
    const manifestBytes = serializeManifest(manifest);
    return { ...img, layers, manifestBytes, manifestDigest: sha256(manifestBytes) };
  });
}

export async function writeArchiveTo(images: ArchiveImage[], sink: ByteSink, opts: ArchiveOptions = {}): Promise<void> {
  const archived = await archivedImages(images, opts);
  const docker = (opts.format ?? 'docker') === 'docker';
  for (const dir of ['blobs', 'blobs/sha256']) {
    await put(sink, encodeHeader({ path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: EPOCH }));
  }
  const written = new Set<string>();
  const blobName = (d: Digest) => `blobs/sha256/${hexOf(d)}`;
  for (const img of archived) {
    for (const layer of img.layers) {
      const { digest, size } = layer.descriptor;
      if (written.has(digest)) continue;
      written.add(digest);
      await put(sink, encodeHeader(fileEntry(blobName(digest), size)));
      await layer.write(sink);
      await put(sink, paddingFor(size));
    }
    for (const [digest, bytes] of [
      [img.image.id, img.image.configBytes],
      [img.manifestDigest, img.manifestBytes],
    ] as const) {
      if (written.has(digest)) continue;
      written.add(digest);
      await putFile(sink, blobName(digest), bytes);
    }
  }

  const index: Index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  const manifestJson: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, names, layers, manifestBytes, manifestDigest } of archived) {
    const refs = names.map((n) => parseReference(n));
    const descriptor = { mediaType: KINDS[opts.mediaTypes ?? 'oci'].manifest, digest: manifestDigest, size: manifestBytes.length };
    if (refs.length === 0) index.manifests.push(descriptor);
    for (const ref of refs) {
      index.manifests.push({
        ...descriptor,
        annotations: {
          'io.containerd.image.name': `${ref.domain}/${ref.path}:${ref.tag ?? 'latest'}`,
          'org.opencontainers.image.ref.name': ref.tag ?? 'latest',
        },
      });
      const top = image.layers.at(-1);
      if (top) (repositories[familiarRepository(ref)] ??= {})[ref.tag ?? 'latest'] = hexOf(top.diffId);
    }
    manifestJson.push({
      Config: blobName(image.id),
      RepoTags: refs.length > 0 ? refs.map((r) => familiarName(r)) : null,
      Layers: layers.map((l) => blobName(l.descriptor.digest)),
    });
  }
  await putFile(sink, 'index.json', Buffer.from(JSON.stringify(index)));
  if (docker) await putFile(sink, 'manifest.json', Buffer.from(`${JSON.stringify(manifestJson)}\n`));
  await putFile(sink, 'oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  if (docker) await putFile(sink, 'repositories', Buffer.from(`${JSON.stringify(repositories)}\n`));
  await put(sink, END_OF_ARCHIVE);
}

import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarEntry } from '../layer/tar-format.js';
import { MEDIA_TYPES, type Index } from '../image/manifest.js';
import { familiarName, familiarRepository, parseReference } from '../image/reference.js';
import { tempSibling } from '../store/atomic.js';
import type { StoredImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import { hexOf, type Digest } from '../util/digest.js';
import { FileSink, type ByteSink } from '../util/sink.js';

export interface ArchiveImage {
  image: StoredImage;
  /** Names as the user gave them; written normalised into index.json, familiar into manifest.json. */
  names: string[];
}

const EPOCH = 0;

function fileEntry(name: string, size: number): TarEntry {
  return { path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: EPOCH };
}

async function put(sink: ByteSink, buf: Buffer): Promise<void> {
  const r = sink.write(buf);
  if (r) await r;
}

async function putFile(sink: ByteSink, name: string, data: Buffer): Promise<void> {
  await put(sink, encodeHeader(fileEntry(name, data.length)));
  await put(sink, data);
  await put(sink, paddingFor(data.length));
}

/**
 * Writes images as one tarball that is both a docker-archive (manifest.json, repositories) and an
 * OCI image layout (oci-layout, index.json, blobs/sha256/), as `docker save` does since Docker 25.
 * Layers go in uncompressed, each streamed from the store and checked against its diffID. The file
 * appears only when complete.
 */
export async function writeImageArchive(store: Store, images: ArchiveImage[], file: string): Promise<void> {
  const tmp = tempSibling(path.resolve(file));
  const sink = new FileSink(tmp, 'wx', 0o644, true);
  try {
    await writeArchiveTo(store, images, sink);
    await sink.close();
    renameSync(tmp, file);
  } catch (err) {
    await sink.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export async function writeArchiveTo(store: Store, images: ArchiveImage[], sink: ByteSink): Promise<void> {
  for (const dir of ['blobs', 'blobs/sha256']) {
    await put(sink, encodeHeader({ path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: EPOCH }));
  }
  const written = new Set<string>();
  const blobName = (d: Digest) => `blobs/sha256/${hexOf(d)}`;
  for (const { image } of images) {
    for (const layer of image.layers) {
      if (written.has(layer.diffId)) continue;
      written.add(layer.diffId);
      await put(sink, encodeHeader(fileEntry(blobName(layer.diffId), layer.size)));
      await store.layers.writeTar(layer.chainId, sink);
      await put(sink, paddingFor(layer.size));
    }
    for (const [digest, bytes] of [
      [image.id, image.configBytes],
      [image.manifestDigest, store.blobs.readBytes(image.manifestDigest)],
    ] as const) {
      if (written.has(digest)) continue;
      written.add(digest);
      await putFile(sink, blobName(digest), bytes);
    }
  }

  const index: Index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
  const manifestJson: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, names } of images) {
    const refs = names.map((n) => parseReference(n));
    const descriptor = { mediaType: MEDIA_TYPES.ociManifest, digest: image.manifestDigest, size: store.blobs.size(image.manifestDigest) };
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
      Layers: image.layers.map((l) => blobName(l.diffId)),
    });
  }
  await putFile(sink, 'index.json', Buffer.from(JSON.stringify(index)));
  await putFile(sink, 'manifest.json', Buffer.from(`${JSON.stringify(manifestJson)}\n`));
  await putFile(sink, 'oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  await putFile(sink, 'repositories', Buffer.from(`${JSON.stringify(repositories)}\n`));
  await put(sink, END_OF_ARCHIVE);
}

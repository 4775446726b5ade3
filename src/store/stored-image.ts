// Images as the store records them: commit, look up, list.
import { ImageNotFoundError, IntegrityError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { layerHistory, parseConfig, type ImageConfig } from '../image/config.js';
import { makeManifest, serializeManifest, type Manifest } from '../image/manifest.js';
import { normalizeName } from '../image/reference.js';
import type { Digest } from '../util/digest.js';
import type { LayerMeta } from './layers.js';
import type { Store } from './store.js';
import { namesByImage } from './images.js';

/** An image as the store holds it, with everything a command needs to show or export it. */
export interface StoredImage {
  id: Digest;
  manifestDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
  configBytes: Buffer;
  /** Bottom first, one per diff_id. */
  layers: LayerMeta[];
  tags: string[];
  /** `docker.io/library/x@sha256:…`: the manifests a registry served it as. */
  repoDigests: string[];
  added: string;
  /** The image it was built FROM, when that came from the store. */
  parent?: Digest;
}

/**
 * Records an image: the config blob as given (its digest is the image ID), an OCI manifest over the
 * uncompressed layers, the tags, and the repository digests it was pulled as. The layers must
 * already be in the store. Returns the image ID and the manifest's digest.
 */
export async function commitImage(
  store: Store,
  configBytes: Buffer,
  tags: readonly string[],
  opts: { parent?: Digest; repoDigests?: readonly string[] } = {},
): Promise<{ id: Digest; manifest: Digest }> {
  const { parent } = opts;
  const config = parseConfig(configBytes);
  checkConfig(config);
  const layers = chainIds(config.rootfs.diff_ids).map((c) => store.layers.meta(c));
  const configDigest = store.blobs.putBytes(configBytes);
  const manifest = makeManifest(
    { digest: configDigest, size: configBytes.length },
    layers.map((l) => ({ digest: l.diffId, size: l.size })),
  );
  const manifestDigest = store.blobs.putBytes(serializeManifest(manifest));
  const summary = { ...(config.created ? { created: config.created } : {}), size: imageSize(layers), top: layers.at(-1)?.chainId ?? ('' as const) };
  await store.withLock(() => {
    store.images.put({ id: configDigest, manifest: manifestDigest, added: new Date().toISOString(), ...(parent && parent !== configDigest ? { parent } : {}), ...summary }, tags.map(normalizeName), opts.repoDigests);
    addSummaries(store);
  });
  return { id: configDigest, manifest: manifestDigest };
}

/**
 * Gives the records written before images.json kept summaries (created, size, top layer) theirs,
 * once, so that `images` and `prune` stop reading every such image's config and layers each time.
 */
function addSummaries(store: Store): void {
  const data = store.images.read();
  const old = Object.values(data.images).filter((r) => r.size === undefined);
  if (old.length === 0) return;
  const names = namesByImage(data);
  for (const record of old) {
    let img: StoredImage;
    try {
      img = readImage(store, record.id, data, names);
    } catch {
      continue; // a damaged image: fsck's to report, not this
    }
    Object.assign(record, { ...(img.config.created ? { created: img.config.created } : {}), size: imageSize(img.layers), top: img.layers.at(-1)?.chainId ?? '' });
  }
  store.images.write(data);
}

/** Tools reject configs whose layer-making history entries do not match the layers. */
export function checkConfig(config: ImageConfig): void {
  const made = layerHistory(config).length;
  if (config.history.length > 0 && made !== config.rootfs.diff_ids.length) {
    throw new IntegrityError(`image config has ${config.rootfs.diff_ids.length} layers but ${made} history entries that made one`);
  }
}

/** Looks up an image by name (normalised as Docker does), ID or unique ID prefix. */
export function getImage(store: Store, nameOrId: string): StoredImage {
  let normalized: string | undefined;
  try {
    normalized = normalizeName(nameOrId);
  } catch {
    normalized = undefined;
  }
  const id = store.images.resolve(nameOrId, normalized);
  if (!id) throw new ImageNotFoundError(`image "${nameOrId}" not found in the store (${store.root})`);
  return readImage(store, id);
}

export function readImage(store: Store, id: Digest, data = store.images.read(), names = namesByImage(data)): StoredImage {
  const record = data.images[id];
  if (!record) throw new ImageNotFoundError(`image ${id} not found in the store`);
  const manifest = store.blobs.readJson<Manifest>(record.manifest);
  const configBytes = store.blobs.readBytes(id);
  const config = parseConfig(configBytes);
  const layers = chainIds(config.rootfs.diff_ids).map((c) => store.layers.meta(c));
  return { id, manifestDigest: record.manifest, manifest, config, configBytes, layers, tags: names.tags(id), repoDigests: names.digests(id), added: record.added, parent: record.parent };
}

/** What an image's files take: the sum of its layers' content sizes (`docker images`' SIZE). */
export function imageSize(layers: readonly LayerMeta[]): number {
  return layers.reduce((n, l) => n + l.contentSize, 0);
}

/** An image as `images` lists it. */
export interface ImageSummary {
  id: Digest;
  tags: string[];
  repoDigests: string[];
  created?: string;
  size: number;
}

/** Every image as `images` lists it: from images.json alone, but for records older than their summaries. */
export function listImageSummaries(store: Store): ImageSummary[] {
  const data = store.images.read();
  const names = namesByImage(data);
  return Object.values(data.images).map((record) => {
    if (record.size === undefined) {
      const img = readImage(store, record.id, data, names);
      return { id: img.id, tags: img.tags, repoDigests: img.repoDigests, ...(img.config.created ? { created: img.config.created } : {}), size: imageSize(img.layers) };
    }
    const { id, created, size } = record;
    return { id, tags: names.tags(id), repoDigests: names.digests(id), ...(created ? { created } : {}), size };
  });
}

/** Every image, images.json read once. */
export function listImages(store: Store): StoredImage[] {
  const data = store.images.read();
  const names = namesByImage(data);
  return Object.keys(data.images).map((id) => readImage(store, id as Digest, data, names));
}

/** Points another name at a stored image (`tsbuild tag`). */
export async function tagImage(store: Store, id: Digest, name: string): Promise<void> {
  await store.withLock(() => {
    const record = store.images.read().images[id];
    if (!record) throw new ImageNotFoundError(`image ${id} not found in the store`);
    store.images.put(record, [normalizeName(name)]);
  });
}

/** Records a repository digest an image was pushed as (`docker.io/me/app@sha256:…`). */
export async function addRepoDigest(store: Store, id: Digest, repoDigest: string): Promise<void> {
  await store.withLock(() => {
    const record = store.images.read().images[id];
    if (record) store.images.put(record, [], [repoDigest]);
  });
}

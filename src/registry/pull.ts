// Pulling an image into the store: manifest (platform picked from an index), config, layers in parallel, verified, by chain ID.
import path from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, RegistryError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { parseConfig, type ImageConfig } from '../image/config.js';
import { layerCompression, MEDIA_TYPES, type Descriptor, type Index, type Manifest } from '../image/manifest.js';
import { compressionOfBytes } from '../layer/decompress.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import type { ImageReference } from '../image/reference.js';
import { CompressedLayers, type Algorithm } from '../store/compressed-layers.js';
import { commitLayerBlob, stageLayerBlob, type StagedLayer } from '../store/import-layer.js';
import { LayerSources } from '../store/layer-sources.js';
import { commitImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import { hexOf, isDigest, type Digest } from '../util/digest.js';
import { coalesced } from '../util/chunks.js';
import { forEachLimited } from '../util/limit.js';
import { FileSink } from '../util/sink.js';
import type { RegistryOptions } from './hosts.js';
import { RegistryRepository, type FetchedManifest } from './repository.js';

/** Layers downloaded at once (dockerd's default is 3; a registry on a fast link rewards a few more). */
const PARALLEL_DOWNLOADS = 4;

/** What a pull tells its user as it goes. */
export interface PullEvents {
  /** A layer's state: `exists` (in the store already), `downloading` (with bytes so far), `done`. */
  layer?(digest: Digest, state: 'exists' | 'waiting' | 'downloading' | 'done', current: number, total: number): void;
}

export interface PullOptions {
  registry: RegistryOptions;
  /** The platform to pick from an index (default: the host's). */
  platform?: Platform;
  events?: PullEvents;
}

/** An image's manifest and config as a registry serves them, before its layers are fetched. */
export interface RemoteImage {
  ref: ImageReference;
  repo: RegistryRepository;
  /** The digest of what the reference names (an index for a multi-platform image): Docker's RepoDigest. */
  digest: Digest;
  manifest: Manifest;
  configBytes: Buffer;
  config: ImageConfig;
}

function parseJson<T>(m: FetchedManifest, what: string): T {
  try {
    return JSON.parse(m.bytes.toString('utf8')) as T;
  } catch {
    throw new IntegrityError(`${what}: the manifest is not valid JSON`);
  }
}

const isIndex = (mediaType: string) => mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;

/** The index entry for `platform` (attestation manifests, platform unknown/unknown, never match). */
function pick(index: Index, platform: Platform, what: string): Descriptor {
  const found = (index.manifests ?? []).find((d) => d.platform && platformMatches({ os: d.platform.os, architecture: d.platform.architecture, variant: d.platform.variant }, platform));
  if (!found) {
    const offered = (index.manifests ?? []).filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => formatPlatform(d.platform!));
    throw new RegistryError(`${what}: no image for ${formatPlatform(platform)} in the manifest list (it has ${offered.join(', ') || 'none'})`);
  }
  if (!isDigest(found.digest)) throw new IntegrityError(`${what}: the manifest list names an invalid digest`);
  return found;
}

/** Reads what a reference names: its manifest (the platform's, from an index) and config, checked. */
export async function fetchRemoteImage(ref: ImageReference, opts: PullOptions): Promise<RemoteImage> {
  const repo = new RegistryRepository(ref.domain, ref.path, opts.registry, 'pull');
  const what = `${ref.domain}/${ref.path}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
  const top = await repo.manifest(ref.digest ?? ref.tag!);
  let m = top;
  if (isIndex(top.mediaType)) {
    const entry = pick(parseJson<Index>(top, what), opts.platform ?? hostPlatform(), what);
    m = await repo.manifest(entry.digest);
    if (isIndex(m.mediaType)) throw new RegistryError(`${what}: a manifest list names another list for its platform, which is not supported`);
  }
  const manifest = parseJson<Manifest>(m, what);
  if (!manifest.config || !isDigest(manifest.config.digest) || !Array.isArray(manifest.layers)) {
    throw new IntegrityError(`${what}: the manifest has no valid config or layers (media type ${m.mediaType})`);
  }
  const configBytes = await repo.smallBlob(manifest.config.digest);
  const config = parseConfig(configBytes);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new IntegrityError(`${what}: the config lists ${config.rootfs.diff_ids.length} layers, the manifest ${manifest.layers.length}`);
  }
  for (const l of manifest.layers) if (!isDigest(l.digest)) throw new IntegrityError(`${what}: the manifest names an invalid layer digest`);
  return { ref, repo, digest: top.digest, manifest, configBytes, config };
}

/**
 * Fetches the layers the store lacks (PARALLEL_DOWNLOADS at once, each decompressed, hashed and
 * checked against its blob digest and its diffID as it streams into temp space), then records them
 * in order by chain ID and the image with its tag and repository digest. Nothing is recorded unless
 * everything checked out.
 */
export async function storeRemoteImage(store: Store, remote: RemoteImage, events?: PullEvents): Promise<{ id: Digest; downloaded: number }> {
  const { repo, manifest, config } = remote;
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  const missing = new Map<Digest, Descriptor>(); // by diffID: a layer listed twice is fetched once
  diffIds.forEach((d, i) => {
    const desc = manifest.layers[i]!;
    if (store.layers.has(chains[i]!)) events?.layer?.(desc.digest, 'exists', desc.size, desc.size);
    else if (!missing.has(d)) missing.set(d, desc);
  });
  const work = store.makeTemp('pull');
  try {
    const staged = new Map<Digest, StagedLayer>();
    for (const desc of missing.values()) events?.layer?.(desc.digest, 'waiting', 0, desc.size);
    const kept = new Map<Digest, { file: string; algorithm: Algorithm }>();
    await forEachLimited([...missing], PARALLEL_DOWNLOADS, async ([diffId, desc]) => {
      let got = 0;
      // a plain tar is kept anyway: the store's own blob is that
      const declared = layerCompression(desc.mediaType);
      const algorithm: Algorithm | undefined = declared === 'uncompressed' ? undefined : declared;
      let keep = algorithm ? new FileSink(path.join(work, `${hexOf(desc.digest)}.${algorithm}`)) : undefined;
      // a socket's 64 KiB chunks joined into 1 MiB ones: written to the file and inflated off the main thread
      const bytes = coalesced(
        repo.blob(desc.digest, desc.size, (n) => {
          got += n;
          events?.layer?.(desc.digest, 'downloading', got, desc.size);
        }),
        1 << 20,
      );
      // the blob as served is kept when its bytes are what its media type says (a mislabelled one is not reused)
      const tee = async function* () {
        let first = true;
        for await (const c of bytes) {
          if (first && keep && compressionOfBytes(c) !== algorithm) {
            await keep.close();
            keep = undefined;
          }
          first = false;
          await keep?.write(c);
          yield c;
        }
      };
      try {
        staged.set(diffId, await stageLayerBlob(Readable.from(tee(), { highWaterMark: 2 }), work, diffId));
        await keep?.close();
        if (keep && algorithm) kept.set(diffId, { file: path.join(work, `${hexOf(desc.digest)}.${algorithm}`), algorithm });
      } catch (err) {
        await keep?.close().catch(() => undefined);
        if (err instanceof IntegrityError && !err.message.includes(desc.digest)) {
          throw new IntegrityError(`layer ${desc.digest} of ${repo.name} is corrupt: ${err.message}: refused`, { cause: err });
        }
        throw err;
      }
      events?.layer?.(desc.digest, 'done', desc.size, desc.size);
    });
    const sources = new LayerSources(store);
    const compressed = new CompressedLayers(store);
    diffIds.forEach((d, i) => {
      const s = staged.get(d);
      if (s && !store.layers.has(chains[i]!)) commitLayerBlob(store, s, chains[i - 1], work);
      const desc = manifest.layers[i]!;
      const k = kept.get(d);
      if (k) {
        compressed.keepPulled(d, k.algorithm, k.file, desc.digest, desc.size);
        kept.delete(d);
      }
      // where the layer is, for push to mount or skip: only a blob this pull fetched and checked
      // against the diffID (a manifest's word for a layer the store had is not proof)
      const fetched = missing.get(d);
      if (s && fetched?.digest === desc.digest) sources.add(d, { domain: repo.domain, repository: repo.path, digest: desc.digest, size: desc.size, mediaType: desc.mediaType });
    });
    const { ref } = remote;
    const name = `${ref.domain}/${ref.path}`;
    const { id } = await commitImage(store, remote.configBytes, ref.digest ? [] : [`${name}:${ref.tag}`], { repoDigests: [`${name}@${remote.digest}`] });
    return { id, downloaded: missing.size };
  } finally {
    store.removeTemp(work);
  }
}

/** `tsbuild pull`: an image from a registry into the store (held in use meanwhile: prune waits). */
export async function pullImage(store: Store, ref: ImageReference, opts: PullOptions): Promise<{ id: Digest; digest: Digest; downloaded: number }> {
  return store.inUse(async () => {
    const remote = await fetchRemoteImage(ref, opts);
    const { id, downloaded } = await storeRemoteImage(store, remote, opts.events);
    return { id, digest: remote.digest, downloaded };
  });
}

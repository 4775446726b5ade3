// Writing the build's cache: to a registry (BuildKit's image-manifest layout) or a local OCI layout directory.
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { MEDIA_TYPES, type Descriptor, type Index, type Manifest } from '../image/manifest.js';
import { parseReference } from '../image/reference.js';
import type { RegistryOptions } from '../registry/hosts.js';
import { pushLayers, pushSmallBlob } from '../registry/push.js';
import { RegistryRepository } from '../registry/repository.js';
import { writeFileAtomic } from '../store/atomic.js';
import { withFileLock } from '../store/lock.js';
import type { LayerMeta } from '../store/layers.js';
import { storeLayer } from '../store/store-image.js';
import type { Store } from '../store/store.js';
import { hexOf, sha256, type Digest } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import { CACHE_CONFIG_MEDIA_TYPE, makeCacheConfig, UNCOMPRESSED_ANNOTATION, type CacheBlob, type CacheRecord } from './config.js';
import type { ImportedCache } from './imported.js';
import { withInsecure, type CacheExportSpec } from './spec.js';

/** A step of this build as the cache exports it: its key, the layers of its result, its history text. */
export interface BuiltStep {
  key: string;
  layers: LayerMeta[];
  createdBy: string;
}

/** The steps an export carries: with mode=max every step of every stage, with min those of the final image. */
export function stepsFor(mode: 'min' | 'max', steps: readonly BuiltStep[], final: readonly LayerMeta[]): BuiltStep[] {
  if (mode === 'max') return [...steps];
  return steps.filter((s) => s.layers.length <= final.length && s.layers.every((l, i) => l.chainId === final[i]!.chainId));
}

/** The distinct layers the steps' results are made of, bottom first as they appear. */
function layersOf(steps: readonly BuiltStep[]): LayerMeta[] {
  const seen = new Map<Digest, LayerMeta>();
  for (const s of steps) for (const l of s.layers) if (!seen.has(l.chainId)) seen.set(l.chainId, l);
  return [...seen.values()];
}

function records(steps: readonly BuiltStep[], blobOf: (l: LayerMeta) => CacheBlob): CacheRecord[] {
  return steps.map((s) => ({ key: s.key, chain: s.layers.map(blobOf), createdBy: s.createdBy, ...(s.layers.at(-1)?.created ? { createdAt: s.layers.at(-1)!.created } : {}) }));
}

/** The cache manifest (OCI image manifest whose config is the cache config), and the config's bytes. */
function cacheManifest(recs: CacheRecord[]): { manifest: Manifest; configBytes: Buffer } {
  const config = makeCacheConfig(recs);
  const configBytes = Buffer.from(JSON.stringify(config));
  const byDigest = new Map<string, CacheBlob>();
  for (const r of recs) for (const b of r.chain) byDigest.set(b.digest, b);
  const layers: Descriptor[] = [...new Set(config.layers.map((l) => l.blob))].map((d) => {
    const b = byDigest.get(d)!;
    return { mediaType: b.mediaType, digest: b.digest, size: b.size, annotations: { [UNCOMPRESSED_ANNOTATION]: b.diffId } };
  });
  return {
    configBytes,
    manifest: { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256(configBytes), size: configBytes.length }, layers },
  };
}

async function toRegistry(store: Store, steps: BuiltStep[], ref: string, registry: RegistryOptions, imported?: ImportedCache): Promise<Digest | undefined> {
  const r = parseReference(ref);
  const repo = new RegistryRepository(r.domain, r.path, registry, 'push');
  const blobs = new Map<Digest, CacheBlob>();
  // layers imported from a cache in this registry and never fetched: skipped or mounted as they are
  const local: LayerMeta[] = [];
  for (const l of layersOf(steps)) {
    const remote = imported?.remote(l.chainId);
    const from = remote?.registry?.domain === r.domain ? remote.registry.repository : undefined;
    if (remote && from !== undefined && (from === r.path ? await repo.hasBlob(remote.blob.digest) : await repo.mountBlob(remote.blob.digest, from))) {
      blobs.set(l.chainId, remote.blob);
    } else local.push(l);
  }
  await imported?.materialize(local);
  const descs = await pushLayers(store, repo, local.map((l) => storeLayer(store, l)), { compression: 'gzip', ociMediaTypes: true });
  local.forEach((l, i) => blobs.set(l.chainId, { ...descs[i]!, diffId: l.diffId }));
  const { manifest, configBytes } = cacheManifest(records(steps, (l) => blobs.get(l.chainId)!));
  await pushSmallBlob(repo, manifest.config.digest, configBytes);
  return repo.putManifest(r.tag ?? 'latest', Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
}

/** Puts bytes into an OCI layout's blobs/ unless there (temp file + rename: never half a blob under its name). */
function putLayoutBytes(dir: string, bytes: Buffer): Digest {
  const digest = sha256(bytes);
  const file = path.join(dir, 'blobs', 'sha256', hexOf(digest));
  if (!existsSync(file)) writeFileAtomic(file, bytes, 0o644);
  return digest;
}

async function toLocal(store: Store, steps: BuiltStep[], dest: string, tag: string): Promise<Digest> {
  const dir = path.resolve(dest);
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const blobs = new Map<Digest, CacheBlob>();
  for (const l of layersOf(steps)) {
    const blob = await storeLayer(store, l).gzip(6);
    const file = path.join(dir, 'blobs', 'sha256', hexOf(blob.digest));
    if (!existsSync(file)) {
      const tmp = `${file}.tmp-${process.pid}`;
      const sink = new FileSink(tmp, 'w', 0o644, true);
      try {
        await blob.write(sink);
      } finally {
        await sink.close();
      }
      renameSync(tmp, file);
    }
    blobs.set(l.chainId, { digest: blob.digest, size: blob.size, mediaType: MEDIA_TYPES.ociLayerGzip, diffId: l.diffId });
  }
  const { manifest, configBytes } = cacheManifest(records(steps, (l) => blobs.get(l.chainId)!));
  putLayoutBytes(dir, configBytes);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = putLayoutBytes(dir, manifestBytes);
  writeFileAtomic(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }), 0o644);
  const indexFile = path.join(dir, 'index.json');
  // two exports to one directory (other tags) each keep the other's entry: index.json.lock, as BuildKit's client
  await withFileLock(`${indexFile}.lock`, () => {
    const index: Index = existsSync(indexFile) ? (JSON.parse(readFileSync(indexFile, 'utf8')) as Index) : { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
    const others = (index.manifests ?? []).filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] !== tag);
    index.manifests = [...others, { mediaType: manifest.mediaType, digest, size: manifestBytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } }];
    writeFileAtomic(indexFile, JSON.stringify(index), 0o644);
  });
  return digest;
}

/**
 * Exports the build's cache as one --cache-to asks (inline is written into the image config by the
 * builder). Layers imported from a cache and never needed are fetched only for a local export or
 * another registry; in the same registry they are skipped or mounted.
 */
export async function exportCache(store: Store, spec: Exclude<CacheExportSpec, { type: 'inline' }>, steps: BuiltStep[], registry: RegistryOptions, imported?: ImportedCache): Promise<Digest | undefined> {
  if (steps.length === 0) return undefined;
  if (spec.type === 'registry') return toRegistry(store, steps, spec.ref, withInsecure(registry, parseReference(spec.ref).domain, spec.insecure), imported);
  await imported?.materialize(layersOf(steps)); // a directory gets every blob
  return toLocal(store, steps, spec.dest, spec.tag);
}

// Reading --cache-from sources: a registry ref (cache manifest, or an image with inline cache) or a local OCI layout.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError, UsageError } from '../errors.js';
import type { Descriptor, Index, Manifest } from '../image/manifest.js';
import { parseReference } from '../image/reference.js';
import type { RegistryOptions } from '../registry/hosts.js';
import { RegistryRepository } from '../registry/repository.js';
import { DigestCounter, hexOf, isDigest, sha256, type Digest } from '../util/digest.js';
import { CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_KEY, readCacheConfig, UNCOMPRESSED_ANNOTATION, type CacheBlob, type CacheConfig } from './config.js';
import type { CacheSource } from './imported.js';
import { withInsecure, type CacheImportSpec } from './spec.js';

/** Cache manifests and configs bigger than this are refused, as BuildKit refuses them. */
const MAX_CACHE_BLOB = 1 << 20;

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new IntegrityError(`${what} is not valid JSON`);
  }
}

/** The layer blobs a cache manifest (or index) lists, by digest; those without a diffID annotation are left out. */
function blobsOf(descriptors: readonly Descriptor[]): Map<string, CacheBlob> {
  const out = new Map<string, CacheBlob>();
  for (const d of descriptors) {
    const diffId = d.annotations?.[UNCOMPRESSED_ANNOTATION];
    if (isDigest(d.digest) && isDigest(diffId) && d.mediaType !== CACHE_CONFIG_MEDIA_TYPE) out.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType, diffId });
  }
  return out;
}

/** Inline cache: the records in an image config, their layer indexes the image's own layers. */
function inlineConfig(manifest: Manifest, configBytes: Buffer): { config: CacheConfig; blobs: Map<string, CacheBlob> } | undefined {
  const image = parseJson<Record<string, unknown> & { rootfs?: { diff_ids?: Digest[] } }>(configBytes, 'image config');
  const inline = image[INLINE_CACHE_KEY];
  const diffIds = image.rootfs?.diff_ids ?? [];
  if (typeof inline !== 'string' || diffIds.length !== manifest.layers.length) return undefined;
  const records = parseJson<CacheConfig['records']>(Buffer.from(inline, 'base64'), 'inline cache');
  const blobs = new Map<string, CacheBlob>();
  manifest.layers.forEach((l, i) => blobs.set(l.digest, { digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: diffIds[i]! }));
  return { config: { layers: manifest.layers.map((l, i) => ({ blob: l.digest, parent: i - 1 })), records }, blobs };
}

/** A cache manifest's config and blobs, whichever of BuildKit's forms it has (image manifest, index, or inline). */
async function readCacheManifest(bytes: Buffer, readBlob: (d: Descriptor) => Promise<Buffer>, what: string): Promise<{ config: CacheConfig; blobs: Map<string, CacheBlob> }> {
  const parsed = parseJson<Manifest & Index>(bytes, what);
  if (Array.isArray(parsed.manifests)) {
    const configDesc = parsed.manifests.find((d) => d.mediaType === CACHE_CONFIG_MEDIA_TYPE);
    if (!configDesc) throw new UsageError(`${what} is an index without a cache config (multi-platform inline cache is not supported)`);
    return { config: parseJson<CacheConfig>(await readBlob(configDesc), `${what}: cache config`), blobs: blobsOf(parsed.manifests) };
  }
  if (!parsed.config || !Array.isArray(parsed.layers)) throw new IntegrityError(`${what} is neither a cache manifest nor an image`);
  const configBytes = await readBlob(parsed.config);
  if (parsed.config.mediaType === CACHE_CONFIG_MEDIA_TYPE) return { config: parseJson<CacheConfig>(configBytes, `${what}: cache config`), blobs: blobsOf(parsed.layers) };
  const inline = inlineConfig(parsed, configBytes);
  if (!inline) throw new UsageError(`${what} is an image without inline cache metadata`);
  return inline;
}

async function fromRegistry(spec: { ref: string; insecure?: boolean }, registry: RegistryOptions): Promise<CacheSource> {
  const ref = parseReference(spec.ref);
  const repo = new RegistryRepository(ref.domain, ref.path, withInsecure(registry, ref.domain, spec.insecure), 'pull');
  const m = await repo.manifest(ref.digest ?? ref.tag!);
  const { config, blobs } = await readCacheManifest(m.bytes, (d) => repo.smallBlob(d.digest, MAX_CACHE_BLOB), spec.ref);
  return { name: spec.ref, records: readCacheConfig(config, blobs), fetch: (b) => repo.blob(b.digest, b.size), registry: { domain: ref.domain, repository: ref.path } };
}

/** A blob of an OCI layout directory, streamed and checked against its digest. */
async function* layoutBlob(dir: string, digest: Digest): AsyncGenerator<Buffer> {
  const counter = new DigestCounter();
  for await (const c of createReadStream(path.join(dir, 'blobs', 'sha256', hexOf(digest)))) {
    counter.update(c as Buffer);
    yield c as Buffer;
  }
  if (counter.digest() !== digest) throw new IntegrityError(`cache blob ${digest} in ${dir} does not match its digest`);
}

function readLayoutBlob(dir: string, d: Descriptor): Buffer {
  if (!isDigest(d.digest)) throw new IntegrityError(`${dir}: invalid digest ${String(d.digest)}`);
  const file = path.join(dir, 'blobs', 'sha256', hexOf(d.digest));
  if (!existsSync(file)) throw new IntegrityError(`${dir} lacks blob ${d.digest}`);
  const bytes = readFileSync(file);
  if (bytes.length > MAX_CACHE_BLOB) throw new IntegrityError(`${dir}: blob ${d.digest} is over ${MAX_CACHE_BLOB} bytes`);
  if (sha256(bytes) !== d.digest) throw new IntegrityError(`cache blob ${d.digest} in ${dir} does not match its digest`);
  return bytes;
}

async function fromLocal(spec: { src: string; tag: string; digest?: string }): Promise<CacheSource> {
  const dir = path.resolve(spec.src);
  const indexFile = path.join(dir, 'index.json');
  if (!existsSync(indexFile)) throw new UsageError(`${spec.src} holds no cache (no index.json)`);
  const index = parseJson<Index>(readFileSync(indexFile), indexFile);
  const desc = spec.digest
    ? (index.manifests ?? []).find((d) => d.digest === spec.digest)
    : (index.manifests ?? []).find((d) => d.annotations?.['io.containerd.image.name'] === spec.tag || d.annotations?.['org.opencontainers.image.ref.name'] === spec.tag);
  if (!desc) throw new UsageError(`${spec.src} has no cache ${spec.digest ? `with digest ${spec.digest}` : `tagged ${spec.tag}`}`);
  const bytes = readLayoutBlob(dir, desc);
  const { config, blobs } = await readCacheManifest(bytes, async (d) => readLayoutBlob(dir, d), `${spec.src}:${spec.tag}`);
  return { name: `local:${spec.src}`, records: readCacheConfig(config, blobs), fetch: (b) => layoutBlob(dir, b.digest) };
}

/** Reads one --cache-from source. */
export function loadCacheSource(spec: CacheImportSpec, registry: RegistryOptions): Promise<CacheSource> {
  return spec.type === 'registry' ? fromRegistry(spec, registry) : fromLocal(spec);
}


// `tsbuild load`: docker save tarballs (legacy and OCI) and OCI archives read into the store.
import { createReadStream, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError, TsbuildError, UsageError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { hostArchitecture, parseConfig } from '../image/config.js';
import { MEDIA_TYPES, type Descriptor, type Index, type Manifest } from '../image/manifest.js';
import { applyLayer } from '../layer/apply.js';
import { decompressed } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
import { isWithin } from '../fs/resolve.js';
import { importLayer } from '../store/import-layer.js';
import { commitImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import { sha256, type Digest } from '../util/digest.js';

export interface LoadedImage {
  id: Digest;
  tags: string[];
}

interface ImageToLoad {
  configFile: string;
  layerFiles: string[];
  tags: string[];
}

/**
 * `tsbuild load`: imports every image of a `docker save` tarball (legacy `<id>/layer.tar` or the
 * Docker 25 OCI form) or of an OCI archive (skopeo, buildah) into the store. The archive is unpacked
 * into temp space first (its manifest may come last); every layer is checked against the config's
 * diff_ids and every OCI blob against its digest before the image is recorded.
 */
export async function loadArchive(store: Store, file: string): Promise<LoadedImage[]> {
  if (!existsSync(file)) throw new UsageError(`open ${file}: no such file`);
  return store.inUse(() => loadLocked(store, file));
}

async function loadLocked(store: Store, file: string): Promise<LoadedImage[]> {
  const work = store.makeTemp('load');
  try {
    const dir = path.join(work, 'archive');
    mkdirSync(dir);
    try {
      await applyLayer(readTar(decompressed(createReadStream(file))), dir);
    } catch (err) {
      throw new IntegrityError(`${file} is not a readable image archive: ${(err as Error).message}`, { cause: err });
    }
    const images = existsSync(path.join(dir, 'manifest.json')) ? dockerArchiveImages(dir) : ociLayoutImages(dir, file);
    const loaded: LoadedImage[] = [];
    for (const img of images) loaded.push(await loadOne(store, img));
    return loaded;
  } finally {
    store.removeTemp(work);
  }
}

/** A path named inside the archive, which must stay inside it (symlinks included). */
function member(dir: string, name: string): string {
  const p = path.join(dir, name);
  if (!existsSync(p)) throw new IntegrityError(`archive is missing ${name}`);
  const real = realpathSync(p);
  if (!isWithin(realpathSync(dir), real) || !lstatSync(real).isFile()) throw new IntegrityError(`archive member ${name} is not a file inside the archive`);
  return real;
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new IntegrityError(`archive ${what} is not valid JSON`, { cause: err });
  }
}

function dockerArchiveImages(dir: string): ImageToLoad[] {
  const manifest = readJson<Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>>(path.join(dir, 'manifest.json'), 'manifest.json');
  if (!Array.isArray(manifest)) throw new IntegrityError('archive manifest.json is not a list');
  return manifest.map((m) => ({
    configFile: member(dir, m.Config),
    layerFiles: m.Layers.map((l) => member(dir, l)),
    tags: m.RepoTags ?? [],
  }));
}

function blobFile(dir: string, d: Descriptor): string {
  const [alg, hex] = d.digest.split(':');
  const file = member(dir, `blobs/${alg}/${hex}`);
  return file;
}

function verifiedJson<T>(dir: string, d: Descriptor): T {
  const file = blobFile(dir, d);
  const bytes = readFileSync(file);
  if (sha256(bytes) !== d.digest) throw new IntegrityError(`archive blob ${d.digest} does not match its digest`);
  return JSON.parse(bytes.toString()) as T;
}

function ociLayoutImages(dir: string, file: string): ImageToLoad[] {
  if (!existsSync(path.join(dir, 'index.json'))) {
    throw new IntegrityError(`${file} is neither a docker-archive (no manifest.json) nor an OCI archive (no index.json)`);
  }
  const index = readJson<Index>(path.join(dir, 'index.json'), 'index.json');
  const out: ImageToLoad[] = [];
  const visit = (d: Descriptor, name: string | undefined) => {
    if (d.mediaType === MEDIA_TYPES.ociIndex || d.mediaType === MEDIA_TYPES.dockerManifestList) {
      const inner = verifiedJson<Index>(dir, d);
      const arch = hostArchitecture();
      const pick = inner.manifests.find((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch));
      if (!pick) throw new TsbuildError(`archive has no image for linux/${arch}`);
      visit(pick, name);
      return;
    }
    const manifest = verifiedJson<Manifest>(dir, d);
    const configFile = blobFile(dir, manifest.config);
    if (sha256(readFileSync(configFile)) !== manifest.config.digest) throw new IntegrityError(`archive config ${manifest.config.digest} does not match its digest`);
    out.push({ configFile, layerFiles: manifest.layers.map((l) => blobFile(dir, l)), tags: name ? [name] : [] });
  };
  for (const d of index.manifests) {
    const ann = d.annotations ?? {};
    const refName = ann['org.opencontainers.image.ref.name'];
    const name = ann['io.containerd.image.name'] ?? (refName && /[:/]/.test(refName) ? refName : undefined);
    visit(d, name);
  }
  return out;
}

async function loadOne(store: Store, img: ImageToLoad): Promise<LoadedImage> {
  const configBytes = readFileSync(img.configFile);
  const config = parseConfig(configBytes);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== img.layerFiles.length) {
    throw new IntegrityError(`image config lists ${diffIds.length} layers but the archive has ${img.layerFiles.length}`);
  }
  const chains = chainIds(diffIds);
  for (let i = 0; i < diffIds.length; i++) {
    if (store.layers.has(chains[i]!)) continue;
    await importLayer(store, createReadStream(img.layerFiles[i]!), chains[i - 1], diffIds[i]);
  }
  const { id } = await commitImage(store, configBytes, img.tags);
  return { id, tags: img.tags };
}


// Where FROM and --from images come from: the store, else a registry (pulled into the store).
import { ImageNotFoundError, RegistryError } from '../errors.js';
import { scratchConfig, type ImageConfig } from '../image/config.js';
import { formatPlatform, platformMatches, type Platform } from '../image/platform.js';
import { familiarName, fullName, parseReference, type ImageReference } from '../image/reference.js';
import type { RegistryOptions } from '../registry/hosts.js';
import type { RemoteImage } from '../registry/pull.js';
import type { LayerMeta } from '../store/layers.js';
import { getImage, readImage, type StoredImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';
import { humanSize } from '../util/units.js';

export interface BaseImage {
  name: string;
  /** The image's ID in the store (none for scratch): images built on it record it as their parent. */
  id?: Digest;
  config: ImageConfig;
  layers: LayerMeta[];
}

export interface ResolveOptions {
  /** FROM --platform, else --platform (else the host's). */
  platform?: Platform;
  /** Lines about the pull (a layer downloading), shown under the step that needs the image. */
  status?: (line: string) => void;
}

/** What a registry serves for a name, before its layers are fetched. */
export interface RemoteBase {
  /** `docker.io/library/busybox:latest@sha256:…`, as BuildKit names a resolved FROM. */
  pinned: string;
  config: ImageConfig;
}

/**
 * Where FROM images come from: the store (images from earlier builds, `load`, `import`, `pull`),
 * else, when registries are enabled, the image's registry: its manifest and config first
 * (`remote`, BuildKit's "load metadata" step), then its layers (`resolve`).
 */
export interface BaseImageSource {
  /** Whether the store will serve `name` (no registry asked). */
  has(name: string, opts?: ResolveOptions): boolean;
  /** The registry's manifest and config for a name the store will not serve; undefined when it will. */
  remote(name: string, opts?: ResolveOptions): Promise<RemoteBase | undefined>;
  resolve(name: string, opts?: ResolveOptions): Promise<BaseImage>;
}

const SCRATCH: BaseImage = { name: 'scratch', config: scratchConfig(), layers: [] };

function asBase(img: StoredImage): BaseImage {
  return { name: img.tags[0] ?? img.id, id: img.id, config: img.config, layers: img.layers };
}

export interface ImageSourceOptions {
  /** Registries to pull from; without it only the store is used. */
  registry?: RegistryOptions;
  /** --pull: ask the registry even for names the store has (and pull only what changed). */
  pull?: boolean;
  /** --platform (an explicit one: a stored image of another platform is then not used). */
  platform?: Platform;
}

/**
 * The store first; then the registry, once per name and platform for the whole build (a second
 * stage FROM the same image shares the pull). Pulled images land in the store with their tag and
 * repository digest, their layers shared with every image that has them.
 */
export class ImageSource implements BaseImageSource {
  private readonly remotes = new Map<string, Promise<RemoteImage>>();
  private readonly found = new Map<string, StoredImage>();
  private readonly pulls = new Map<string, Promise<BaseImage>>();

  constructor(
    private readonly store: Store,
    private readonly opts: ImageSourceOptions = {},
  ) {}

  private platformOf(opts?: ResolveOptions): Platform | undefined {
    return opts?.platform ?? this.opts.platform;
  }

  /** The stored image for a reference, if it is there and of the platform asked for explicitly. */
  private local(ref: ImageReference, opts?: ResolveOptions): StoredImage | undefined {
    const name = fullName(ref);
    let img = this.found.get(name);
    if (!img) {
      try {
        img = getImage(this.store, name);
      } catch (err) {
        if (err instanceof ImageNotFoundError) return undefined;
        throw err;
      }
      this.found.set(name, img); // read once a build: the stage's FROM asks twice
    }
    const wanted = this.platformOf(opts);
    if (wanted && !platformMatches({ os: img.config.os, architecture: img.config.architecture, variant: img.config.variant }, wanted)) return undefined;
    return img;
  }

  has(name: string, opts?: ResolveOptions): boolean {
    return name === 'scratch' || this.local(parseReference(name), opts) !== undefined;
  }

  private key(ref: ImageReference, opts?: ResolveOptions): string {
    const p = this.platformOf(opts);
    return `${fullName(ref)}|${p ? formatPlatform(p) : ''}`;
  }

  private fetch(ref: ImageReference, opts?: ResolveOptions): Promise<RemoteImage> {
    const key = this.key(ref, opts);
    let p = this.remotes.get(key);
    if (!p) {
      p = import('../registry/pull.js').then(({ fetchRemoteImage }) => fetchRemoteImage(ref, { registry: this.opts.registry!, platform: this.platformOf(opts) }));
      this.remotes.set(key, p);
    }
    return p;
  }

  async remote(name: string, opts?: ResolveOptions): Promise<RemoteBase | undefined> {
    if (name === 'scratch' || !this.opts.registry) return undefined;
    const ref = parseReference(name);
    if (!this.opts.pull && this.local(ref, opts)) return undefined;
    const r = await this.fetch(ref, opts).catch((err: unknown) => {
      throw notFound(err, ref);
    });
    return { pinned: `${fullName({ ...ref, digest: undefined })}@${r.digest}`, config: r.config };
  }

  async resolve(name: string, opts?: ResolveOptions): Promise<BaseImage> {
    if (name === 'scratch') {
      const p = this.platformOf(opts);
      return p ? { ...SCRATCH, config: { ...SCRATCH.config, os: p.os, architecture: p.architecture, variant: p.variant } } : SCRATCH;
    }
    const ref = parseReference(name);
    const key = this.key(ref, opts);
    const pulling = this.pulls.get(key);
    if (pulling) return pulling;
    if (!this.opts.pull || !this.opts.registry) {
      const img = this.local(ref, opts);
      if (img) return asBase(img);
      if (!this.opts.registry) throw new ImageNotFoundError(`base image ${familiarName(ref)} is not in the local store (${this.store.root}); add it with 'tsbuild pull', 'tsbuild load FILE.tar' or 'tsbuild import ROOTFS.tar ${familiarName(ref)}'`);
    }
    const p = this.pull(ref, opts);
    this.pulls.set(key, p);
    return p;
  }

  private async pull(ref: ImageReference, opts?: ResolveOptions): Promise<BaseImage> {
    const remote = await this.fetch(ref, opts).catch((err: unknown) => {
      throw notFound(err, ref);
    });
    const { storeRemoteImage } = await import('../registry/pull.js');
    const { id } = await storeRemoteImage(this.store, remote, { layer: layerStatus(opts?.status) });
    return { ...asBase(readImage(this.store, id)), name: fullName(ref) };
  }
}

/** A registry's "no such image" (404, or 401/403 for a repository that may not exist) as ImageNotFoundError. */
function notFound(err: unknown, ref: ImageReference): unknown {
  if (err instanceof RegistryError && (err.status === 404 || err.status === 401 || err.status === 403)) {
    return new ImageNotFoundError(`failed to resolve source metadata for ${fullName(ref)}: ${err.message}`, { cause: err });
  }
  return err;
}

/** BuildKit's lines for a layer being fetched: `sha256:ab… 1.05MB / 2.20MB 0.3s`, then `… done`. */
function layerStatus(status: ((line: string) => void) | undefined) {
  if (!status) return undefined;
  const started = new Map<string, number>();
  const shown = new Map<string, number>();
  return (digest: Digest, state: string, current: number, total: number) => {
    const now = Date.now();
    if (state === 'exists' || state === 'waiting') return;
    if (!started.has(digest)) started.set(digest, now);
    const secs = ((now - started.get(digest)!) / 1000).toFixed(1);
    if (state === 'done') {
      status(`${digest} ${humanSize(total)} / ${humanSize(total)} ${secs}s done`);
      return;
    }
    if (now - (shown.get(digest) ?? 0) < 1000) return; // at most a line a second per layer
    shown.set(digest, now);
    status(`${digest} ${humanSize(current)} / ${humanSize(total)} ${secs}s`);
  };
}


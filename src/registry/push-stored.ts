// A stored image pushed under a name, and the digest the registry gave it kept as a repo digest.
import type { ImageReference } from '../image/reference.js';
import { storeImage } from '../store/store-image.js';
import { addRepoDigest, getImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';
import type { RegistryOptions } from './hosts.js';
import { pushImage, type Compression } from './push.js';

export interface PushStoredOptions {
  registry?: RegistryOptions;
  compression?: Compression;
  compressionLevel?: number;
  ociMediaTypes?: boolean;
  /** Each layer's progress: `Pushed`, `Layer already exists`... */
  onLayer?: (digest: Digest, what: string) => void;
}

/** Pushes the image `source` names as `target` (which needs a tag); returns the manifest digest and size. */
export async function pushStored(store: Store, source: string, target: ImageReference, opts: PushStoredOptions = {}): Promise<{ digest: Digest; size: number }> {
  return store.inUse(async () => {
    const img = getImage(store, source);
    const result = await pushImage(store, storeImage(store, img), target, {
      registry: opts.registry ?? {},
      compression: opts.compression ?? 'gzip',
      compressionLevel: opts.compressionLevel,
      ociMediaTypes: opts.ociMediaTypes,
      onLayer: opts.onLayer,
    });
    await addRepoDigest(store, img.id, `${target.domain}/${target.path}@${result.digest}`);
    return result;
  });
}

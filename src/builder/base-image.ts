// Where FROM and --from images come from (today the store; the seam for registry pulls).
import { ImageNotFoundError } from '../errors.js';
import { parseConfig, scratchConfig, type ImageConfig } from '../image/config.js';
import { familiarName, fullName, parseReference } from '../image/reference.js';
import type { LayerMeta } from '../store/layers.js';
import { getImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';

export interface BaseImage {
  name: string;
  /** The image's ID in the store (none for scratch): images built on it record it as their parent. */
  id?: Digest;
  config: ImageConfig;
  layers: LayerMeta[];
}

/**
 * Where FROM images come from. Today: the local store (images from `tsbuild load`, `import` or
 * earlier builds). A registry source plugs in here: try the store, then pull.
 */
export interface BaseImageSource {
  resolve(name: string): Promise<BaseImage>;
}

export class StoreImageSource implements BaseImageSource {
  constructor(private readonly store: Store) {}

  async resolve(name: string): Promise<BaseImage> {
    if (name === 'scratch') return { name, config: scratchConfig(), layers: [] };
    const ref = parseReference(name);
    try {
      const img = getImage(this.store, fullName(ref));
      return { name: fullName(ref), id: img.id, config: parseConfig(img.configBytes), layers: img.layers };
    } catch (err) {
      if (err instanceof ImageNotFoundError) {
        throw new ImageNotFoundError(
          `base image ${familiarName(ref)} is not in the local store (${this.store.root}); add it with 'tsbuild load FILE.tar' or 'tsbuild import ROOTFS.tar ${familiarName(ref)}' (registry pulls are not supported yet)`,
        );
      }
      throw err;
    }
  }
}

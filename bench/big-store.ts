/**
 * A big store for the bench, made in seconds through the store's own code: 1,000 images (each the
 * base image's config with a label of its own, so each has its own ID, manifest and tag) and 20,000
 * build cache entries naming the base's layer, as years of CI builds leave behind.
 */
import { createHash } from 'node:crypto';
import { chainIds } from '../src/image/chain-id.js';
import { parseConfig } from '../src/image/config.js';
import { makeManifest, serializeManifest } from '../src/image/manifest.js';
import { BuildCache } from '../src/store/build-cache.js';
import { getImage } from '../src/store/stored-image.js';
import { Store } from '../src/store/store.js';

export function fillStore(root: string, base: string, images: number, cacheEntries: number): void {
  const store = Store.open(root);
  try {
    const image = getImage(store, base);
    const config = parseConfig(store.blobs.readBytes(image.id));
    const layers = chainIds(config.rootfs.diff_ids).map((c) => store.layers.meta(c));
    const data = store.images.read();
    for (let i = 0; i < images; i++) {
      const bytes = Buffer.from(JSON.stringify({ ...config, config: { ...config.config, Labels: { 'bench.image': String(i) } } }));
      const id = store.blobs.putBytes(bytes);
      const manifest = store.blobs.putBytes(serializeManifest(makeManifest({ digest: id, size: bytes.length }, layers.map((l) => ({ digest: l.diffId, size: l.size })))));
      data.images[id] = { id, manifest, added: new Date().toISOString(), ...(config.created ? { created: config.created } : {}), size: layers.reduce((n, l) => n + l.contentSize, 0), top: layers.at(-1)?.chainId ?? '' };
      data.tags[`docker.io/library/bench-many-${i}:latest`] = id;
    }
    store.images.write(data);
    const cache = new BuildCache(store);
    const top = layers.at(-1)!;
    for (let i = 0; i < cacheEntries; i++) cache.put(createHash('sha256').update(`bench entry ${i}`).digest('hex'), top, `RUN echo ${i} # buildkit`);
  } finally {
    store.cleanup();
  }
}

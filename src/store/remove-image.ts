// rmi: untagging, refusing parents, removing what only the image used.
import { ImageNotFoundError, TsbuildError } from '../errors.js';
import { chainIds } from '../image/chain-id.js';
import { familiarName, normalizeName, parseReference } from '../image/reference.js';
import type { Digest } from '../util/digest.js';
import { cacheKeptLayers } from './gc.js';
import { digestReference, ImageIndex, type ImageRecord } from './images.js';
import { readImage } from './stored-image.js';
import type { Store } from './store.js';

export interface RemoveReport {
  untagged: string[];
  deleted: Digest[];
}

/**
 * Images built on `id`: those that record it as their parent, and those whose layers extend its
 * layers (a loaded image built on it elsewhere).
 */
function childrenOf(store: Store, id: Digest, images: Iterable<ImageRecord>): Digest[] {
  const chain = chainIds(readImage(store, id).config.rootfs.diff_ids);
  const top = chain.at(-1);
  const out: Digest[] = [];
  for (const other of images) {
    if (other.id === id) continue;
    if (other.parent === id) out.push(other.id);
    else if (top !== undefined) {
      const theirs = chainIds(readImage(store, other.id).config.rootfs.diff_ids);
      if (theirs.length > chain.length && theirs[chain.length - 1] === top) out.push(other.id);
    }
  }
  return out;
}

/**
 * `rmi`: removes a tag, and the image when no tag is left (or when named by ID and tagged at most
 * once, or with `force`). An image other images were built on is refused unless `force`, as Docker
 * refuses it, before anything changes. Then deletes the blobs and layers that only the deleted
 * images used; layers are moved aside before removal, so a crash never leaves half a layer under
 * its name.
 */
export async function removeImage(store: Store, nameOrId: string, force = false): Promise<RemoveReport> {
  return store.collecting(() => store.withLock(() => {
    const data = store.images.read();
    const report: RemoveReport = { untagged: [], deleted: [] };
    let normalized: string | undefined;
    try {
      normalized = normalizeName(nameOrId);
    } catch {
      normalized = undefined;
    }
    let id: Digest | undefined;
    const refuseParent = (image: Digest, lastName: boolean) => {
      if (force || !lastName || childrenOf(store, image, Object.values(data.images)).length === 0) return;
      throw new TsbuildError(`conflict: unable to delete ${image.slice(7, 19)} (must be forced) - image has dependent child images`);
    };
    const digestRef = digestReference(normalized);
    if (digestRef && data.digests[digestRef]) {
      // by repository digest: that reference goes, and the image with it when nothing else names it
      id = data.digests[digestRef];
      refuseParent(id, Object.values(data.tags).every((t) => t !== id));
      delete data.digests[digestRef];
      report.untagged.push(familiarName(parseReference(digestRef)));
    } else if (normalized && data.tags[normalized]) {
      id = data.tags[normalized];
      refuseParent(id, Object.values(data.tags).filter((t) => t === id).length === 1);
      delete data.tags[normalized];
      report.untagged.push(familiarName(parseReference(normalized)));
    } else {
      id = store.images.resolve(nameOrId);
      if (!id) throw new ImageNotFoundError(`No such image: ${nameOrId}`);
      const tags = Object.keys(data.tags).filter((t) => data.tags[t] === id);
      if (tags.length > 1 && !force) {
        throw new TsbuildError(`conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
      }
      refuseParent(id, true);
      for (const t of tags) {
        delete data.tags[t];
        report.untagged.push(familiarName(parseReference(t)));
      }
    }
    const stillTagged = Object.values(data.tags).includes(id) || (digestRef !== undefined && Object.values(data.digests).includes(id));
    if (stillTagged) {
      store.images.write(data);
      return report;
    }
    const doomed = readImage(store, id);
    ImageIndex.drop(data, [id]);
    store.images.write(data);
    report.deleted.push(id);

    const keepLayers = cacheKeptLayers(store); // the build cache's layers (and their parents) stay
    const keepBlobs = new Set<string>();
    for (const c of keepLayers) {
      const meta = store.layers.meta(c as Digest);
      if (meta.blob) keepBlobs.add(meta.blob);
    }
    for (const other of Object.values(data.images)) {
      const img = readImage(store, other.id);
      keepBlobs.add(img.id);
      keepBlobs.add(img.manifestDigest);
      for (const c of chainIds(img.config.rootfs.diff_ids)) keepLayers.add(c);
      for (const l of img.layers) if (l.blob) keepBlobs.add(l.blob);
    }
    const trash = store.makeTemp('rmi');
    for (const layer of [...doomed.layers].reverse()) {
      if (keepLayers.has(layer.chainId)) continue;
      store.layers.remove(layer.chainId, trash); // the layer first: never a layer without its blob
      if (layer.blob && !keepBlobs.has(layer.blob)) store.blobs.remove(layer.blob);
    }
    for (const b of [doomed.manifestDigest, doomed.id]) if (!keepBlobs.has(b)) store.blobs.remove(b);
    store.removeTemp(trash);
    return report;
  }));
}

// `-o` and `save`: images of the store written as archives (an unchanged -o file left alone).
import { getImage } from '../store/stored-image.js';
import { outputUnchanged, recordOutput } from '../store/output-records.js';
import { storeImage } from '../store/store-image.js';
import type { Store } from '../store/store.js';
import { writeImageArchive, type ArchiveImage } from './archive-writer.js';
import type { OutputSpec } from './output-spec.js';

/**
 * `-o`: writes a built image where the spec says, in its form, unless the file already holds
 * exactly that archive as tsbuild last wrote it (then, as make would, it is left alone). The store
 * is marked in use while it reads the image's layers, so prune waits. Returns whether it wrote.
 */
export async function exportImage(store: Store, imageId: string, spec: OutputSpec, names: string[], jobs?: number): Promise<'written' | 'unchanged'> {
  const key = JSON.stringify({ id: imageId, names, type: spec.type, compression: spec.compression ?? null, mediaTypes: spec.mediaTypes });
  if (spec.dest !== '-' && outputUnchanged(store, spec.dest, key)) return 'unchanged';
  await store.inUse(async () => {
    const image = storeImage(store, getImage(store, imageId));
    await writeImageArchive([{ image, names }], spec.dest, { format: spec.type, compression: spec.compression, mediaTypes: spec.mediaTypes, jobs });
    if (spec.dest !== '-') recordOutput(store, spec.dest, key);
  });
  return 'written';
}

/**
 * `save`: images of the store by name or ID into one archive. A name is written as given; an ID
 * (or ID prefix) brings the image's tags, as `docker save` does.
 */
export async function saveImages(store: Store, names: string[], dest: string): Promise<void> {
  await store.inUse(async () => {
    const byId = new Map<string, ArchiveImage>();
    for (const n of names) {
      const stored = getImage(store, n);
      const entry = byId.get(stored.id) ?? { image: storeImage(store, stored), names: [] };
      if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(n)) entry.names.push(n);
      else entry.names.push(...stored.tags);
      byId.set(stored.id, entry);
    }
    await writeImageArchive([...byId.values()], dest);
  });
}

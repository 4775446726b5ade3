import { getImage } from '../store/stored-image.js';
import { outputUnchanged, recordOutput } from '../store/output-records.js';
import type { Store } from '../store/store.js';
import { writeImageArchive } from './archive-writer.js';
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
    const image = getImage(store, imageId);
    await writeImageArchive(store, [{ image, names }], spec.dest, { format: spec.type, compression: spec.compression, mediaTypes: spec.mediaTypes, jobs });
    if (spec.dest !== '-') recordOutput(store, spec.dest, key);
  });
  return 'written';
}

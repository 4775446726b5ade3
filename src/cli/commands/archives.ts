import { UsageError } from '../../errors.js';
import { familiarName, parseReference } from '../../image/reference.js';
import { loadArchive } from '../../archive/archive-reader.js';
import { writeImageArchive, type ArchiveImage } from '../../archive/archive-writer.js';
import { importRootfs } from '../../archive/rootfs-import.js';
import { getImage } from '../../store/stored-image.js';
import type { Store } from '../../store/store.js';
import type { Io } from '../io.js';

export async function loadCommand(store: Store, file: string, quiet: boolean, io: Io): Promise<void> {
  const loaded = await loadArchive(store, file);
  if (quiet) return;
  for (const img of loaded) {
    if (img.tags.length === 0) io.out(`Loaded image ID: ${img.id}`);
    for (const t of img.tags) io.out(`Loaded image: ${familiarName(parseReference(t))}`);
  }
}

export async function importCommand(store: Store, file: string, name: string, io: Io): Promise<void> {
  io.out(await importRootfs(store, file, name));
}

export async function saveCommand(store: Store, names: string[], output: string | undefined, io: Io): Promise<void> {
  if (!output) throw new UsageError('tsbuild save needs -o FILE (writing an archive to a terminal is refused)');
  const byId = new Map<string, ArchiveImage>();
  for (const n of names) {
    const image = getImage(store, n);
    const entry = byId.get(image.id) ?? { image, names: [] };
    if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(n)) entry.names.push(n);
    else entry.names.push(...image.tags);
    byId.set(image.id, entry);
  }
  await store.inUse(() => writeImageArchive(store, [...byId.values()], output));
  io.err(`saved ${names.join(', ')} to ${output}`);
}

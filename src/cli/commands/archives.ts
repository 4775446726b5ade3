// The `load`, `import` and `save` commands.
import { UsageError } from '../../errors.js';
import { familiarName, parseReference } from '../../image/reference.js';
import { loadArchive } from '../../archive/archive-reader.js';
import { saveImages } from '../../archive/export.js';
import { importRootfs } from '../../archive/rootfs-import.js';
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
  await saveImages(store, names, output);
  io.err(`saved ${names.join(', ')} to ${output}`);
}

// `tsbuild import`: a one-layer image from a rootfs tarball.
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { hostArchitecture, serializeConfig, type ImageConfig } from '../image/config.js';
import { normalizeName } from '../image/reference.js';
import { importLayer } from '../store/import-layer.js';
import { commitImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';

/** `tsbuild import ROOTFS.tar NAME`: a one-layer image from a rootfs tarball, as `docker import`. */
export async function importRootfs(store: Store, file: string, name: string): Promise<Digest> {
  normalizeName(name); // reject a bad name before reading anything
  if (!existsSync(file)) throw new UsageError(`open ${file}: no such file`);
  return store.inUse(() => importLocked(store, file, name));
}

async function importLocked(store: Store, file: string, name: string): Promise<Digest> {
  const layer = await importLayer(store, createReadStream(file), undefined);
  const created = new Date().toISOString();
  const config: ImageConfig = {
    architecture: hostArchitecture(),
    config: {},
    created,
    history: [{ created, comment: `Imported from ${path.basename(file)}` }],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
  };
  return (await commitImage(store, serializeConfig(config), [name])).id;
}

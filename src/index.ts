// tsbuild as a library: building, the store, archives, the Dockerfile parser.
export { build } from './builder/builder.js';
export type { BuildOptions, BuildResult } from './builder/options.js';
export { Store, defaultRoot } from './store/store.js';
export { getImage, listImages, commitImage } from './store/stored-image.js';
export { removeImage } from './store/remove-image.js';
export { loadArchive } from './archive/archive-reader.js';
export { writeImageArchive } from './archive/archive-writer.js';
export { importRootfs } from './archive/rootfs-import.js';
export { parseDockerfile } from './dockerfile/parse.js';
export { expandWord, expandWords } from './dockerfile/shell-words.js';
export { chainIds, chainIdOf } from './image/chain-id.js';
export { writeLayerTar } from './layer/diff.js';
export { readTar } from './layer/tar-reader.js';
export { applyLayer } from './layer/apply.js';
export * from './errors.js';

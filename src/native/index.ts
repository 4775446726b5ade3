// The native addon and the sandbox helper, found and loaded.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The native half of tsbuild (native/*.c, built by `npm install` through node-gyp): syscalls Node
 * lacks (xattrs, mknod) and the sandbox helper that runs RUN steps in namespaces.
 */
interface NativeAddon {
  listXattrs(file: string): string[];
  getXattr(file: string, name: string): Buffer | null;
  setXattr(file: string, name: string, value: Buffer): void;
  mknod(file: string, mode: number, major: number, minor: number): void;
  /** flock(LOCK_NB): true when taken, false when another process holds it. */
  tryLock(fd: number, exclusive: boolean): boolean;
}

/** The package's root: the nearest directory above this module with build/ (dist/cli/.. or the bundle's dist/..). */
function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

const packageRoot = findPackageRoot();
const releaseDir = path.join(packageRoot, 'build', 'Release');

function load(): NativeAddon {
  const file = path.join(releaseDir, 'tsbuild_native.node');
  if (!existsSync(file)) {
    throw new Error(`tsbuild's native addon is not built (${file}); run 'npm install' in ${packageRoot}`);
  }
  return createRequire(import.meta.url)(file) as NativeAddon;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  addon ??= load();
  return addon;
}

/** Path of the tsbuild-sandbox executable. */
export function sandboxHelperPath(): string {
  return path.join(releaseDir, 'tsbuild-sandbox');
}

// The native addon and the sandbox helper, found and loaded.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  /** A new file (O_EXCL|O_NOFOLLOW) with this content, owner, mode and mtime (also atime), in one call; errors carry `syscall`. */
  writeNewFile(file: string, data: Buffer, uid: number, gid: number, mode: number, mtime: number): void;
  /** Owner, mode, then times of a file written through fd; closes fd whatever happens. */
  finishFile(fd: number, uid: number, gid: number, mode: number, mtime: number): void;
  /** A directory (a final symlink not followed): its real path, entry names (each ended by a NUL), and 12 lstat numbers per entry (see fs/scan-dir.ts). */
  scanDir(dir: string): { real: string; names: string; stats: Float64Array };
  /** scanDir of each directory, on up to `threads` threads; an Error for each that failed. */
  scanDirs(dirs: string[], threads: number): Array<{ real: string; names: string; stats: Float64Array } | Error>;
  /** A directory's entry names, each ended by a NUL, and their inode numbers (getdents: no stat). */
  listNames(dir: string): { names: string; inos: Float64Array };
  /**
   * Reads exactly `size` bytes of a file into buf at offset; false when the file is not the one planned
   * (dev, ino, size; unchecked when dev < 0), vanished or shrank. With rootFd >= 0, `file` is relative
   * to it and resolved beneath it through no symlink.
   */
  readFileInto(rootFd: number, file: string, dev: number, ino: number, size: number, buf: Buffer, offset: number): boolean;
  /**
   * sha256 of files (NUL-ended paths beneath rootFd, no symlinks) on up to `threads` threads, each
   * checked against expect (dev, ino, size); content kept at offsets[i] >= 0 (see ContextTree.hashFiles).
   */
  hashFiles(rootFd: number, paths: string, expect: Float64Array, offsets: Float64Array, contents: Buffer, digests: Buffer, ok: Uint8Array, errs: Int32Array, threads: number): void;
  /**
   * Small files beneath rootFd as ustar entries (header and content) into `out` (zeroed), on up to
   * `threads` threads: paths and tar names NUL-ended; meta per file: dev, ino, size, mode, uid, gid,
   * mtime, offset in out; results as hashFiles gives them (see builder/copy-plan.ts tarRun).
   */
  tarFiles(rootFd: number, paths: string, names: string, meta: Float64Array, out: Buffer, ok: Uint8Array, errs: Int32Array, threads: number): void;
  /**
   * writeNewFile of each file on up to `threads` threads (paths NUL-ended; meta: uid, gid, mode,
   * mtime each); results per file: errno and the step that failed, or 0, 0 (see layer/apply.ts).
   */
  writeNewFiles(paths: string, datas: Buffer[], meta: Float64Array, results: Int32Array, threads: number): void;
  /** "" once libslirp is loaded (dlopen, on first call), else why it cannot be (see native/network.c). */
  loadSlirp(): string;
  /**
   * A new network namespace with loopback up and tap0 addressed and routed, served by a new slirp
   * instance on the addon's network thread: [its descriptor (close-on-exec), the instance's id].
   */
  makeStepNetwork(): [number, number];
  /** Ends a makeStepNetwork's slirp instance (the caller closes the namespace's descriptor). */
  stopStepNetwork(id: number): void;
  /** pipe2(O_CLOEXEC): [read end, write end]. */
  pipe(): [number, number];
  /** posix_spawnp on a libuv thread: the child's pid; its descriptor i is fds[i] (see sandbox/spawn.ts). */
  spawn(file: string, argv: string[], env: string[], fds: number[]): Promise<number>;
  /** waitpid(WNOHANG): null while the process runs, else [exit code or -1, signal number or 0]. */
  reap(pid: number): [number, number] | null;
  /** The sha256 of bytes, or of a string's UTF-8, as lowercase hex. */
  sha256(data: string | Buffer): string;
  /** `bytes` (at most 64) random bytes from getrandom(2), as hex. */
  randomHex(bytes: number): string;
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
  // process.dlopen, not require: a cached build loads the addon for its lock only, and require's
  // resolution of a .node file cost more than loading it
  const module = { exports: {} as NativeAddon };
  process.dlopen(module, file);
  return module.exports;
}

/**
 * Threads the addon's batch calls (scanDirs, hashFiles, tarFiles, writeNewFiles) use: one per CPU,
 * up to 4, for work that is mostly the kernel's per file.
 */
export const ADDON_THREADS = Math.max(1, Math.min(4, availableParallelism()));

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  addon ??= load();
  return addon;
}

/** Path of the tsbuild-sandbox executable. */
export function sandboxHelperPath(): string {
  return path.join(releaseDir, 'tsbuild-sandbox');
}

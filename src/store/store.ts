// The local store: its layout, its temp space, its locks.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from './blobs.js';
import { ImageIndex } from './images.js';
import { LayerStore } from './layers.js';
import { tempSiblingOwner } from './atomic.js';
import { processAlive, withFileLock } from './lock.js';
import { errnoCode, UsageError } from '../errors.js';
import { overlayOpaqueXattr } from '../fs/whiteout.js';
import { native } from '../native/index.js';
import { randomHex } from '../util/digest.js';

/** tmp/.owner-<token>: held locked by the live process whose temp dirs carry <token>. */
const OWNER_PREFIX = '.owner-';
/** The store's record of the xattr its layers mark opaque directories with (checkMarkers). */
const MARKERS = 'opaque-xattr';

/** The owner token in a temp dir's name (`<purpose>-<token>-<n>`), if it has one. */
const tokenOf = (name: string) => /-(\d+-[0-9a-f]{8})-\d+$/.exec(name)?.[1];

/** Mount points at or below `dir`, in this process's mount namespace. */
function mountPointsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/**
 * The default store root: /var/lib/tsbuild for root, $XDG_DATA_HOME/tsbuild (~/.local/share/tsbuild)
 * for an ordinary user, whose commands run as root of a user namespace (TSBUILD_ROOTLESS, set by
 * bin/tsbuild.cjs) with the user's own $HOME.
 */
export function defaultRoot(): string {
  if (process.env.TSBUILD_ROOT) return process.env.TSBUILD_ROOT;
  if (process.getuid?.() === 0 && !process.env.TSBUILD_ROOTLESS) return '/var/lib/tsbuild';
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'tsbuild');
}

/**
 * The local store. Every path under its root, and the module that owns it:
 *   blobs/sha256/<hex>                  configs, manifests, layer tars (blobs.ts; verified when read)
 *   layers/<chain hex>/diff/            a layer's files in overlay form (layers.ts)
 *   layers/<chain hex>/meta.json        its diffID, parent, sizes, blob, short link (layers.ts)
 *   layers/<chain hex>/extracted.json   the digest diff/ must give when it came from a blob, found by fsck from a fresh extraction (layers.ts)
 *   l/<short>                           short links to diff dirs, for overlay options (layers.ts)
 *   images.json                         tags and images (images.ts)
 *   opaque-xattr                        which xattr its layers mark opaque directories with (this file)
 *   cache/<key>.json                    build cache: a step's key -> its layer and history (build-cache.ts)
 *   cache-mounts/<id hex>/ and .lock    RUN --mount=type=cache directories (cache-mounts.ts)
 *   stat-cache/<context>.tsv            context files' digests by (size, mtime, ctime, inode) (stat-cache.ts)
 *   compressed/<diff hex>.<gzip|zstd>-<level|pulled>.json  a layer's compressed blob, made for -o or push, or kept as pulled (compressed-layers.ts)
 *   sources/<diff hex>.json             registry blobs known to hold a layer, for push (layer-sources.ts)
 *   outputs.json                        what tsbuild last wrote to each -o file (output-records.ts)
 *   locks/store.lock, locks/gc.lock     images.json writers; builds (shared) against prune and rmi (this file)
 *   tmp/<purpose>-<token>-<n>/          per-command work space, removed on exit and, after a crash,
 *                                       by the next command that writes (this file)
 *   tmp/.owner-<token>                  locked by the live process whose work space carries <token>
 * Writes are temp file + rename (atomic.ts): nothing is ever half-written under its real name.
 */
export class Store {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly images: ImageIndex;
  readonly tmpDir: string;
  private readonly temps = new Set<string>();

  private constructor(readonly root: string) {
    this.blobs = new BlobStore(path.join(root, 'blobs'));
    this.layers = new LayerStore(path.join(root, 'layers'), path.join(root, 'l'), this.blobs);
    this.images = new ImageIndex(path.join(root, 'images.json'));
    this.tmpDir = path.join(root, 'tmp');
  }

  /**
   * Opens (and makes) the store. Unless `sweep` is false, first removes what killed commands left
   * in tmp/; read-only commands (images, inspect, history, system df) pass false: a dead build's
   * files must neither fail nor slow them. What cannot be removed is reported through `warn`, one
   * line each, and the command goes on.
   */
  static open(root = defaultRoot(), options: { sweep?: boolean; warn?: (line: string) => void } = {}): Store {
    const store = new Store(path.resolve(root));
    for (const d of ['blobs/sha256', 'layers', 'l', 'tmp', 'locks']) mkdirSync(path.join(store.root, d), { recursive: true });
    if (options.sweep ?? true) {
      store.checkMarkers();
      store.removeStaleTemps(options.warn ?? (() => undefined));
    }
    return store;
  }

  /**
   * Layers keep their opaque directories in the xattr the overlay mounts of their maker read:
   * trusted.* as root, user.* in a user namespace (fs/whiteout.ts). A store serves one kind: the
   * other would see deleted directories' files again. Stores older than this record were root's.
   */
  private checkMarkers(): void {
    const file = path.join(this.root, MARKERS);
    const want = overlayOpaqueXattr();
    let have: string | undefined;
    try {
      have = readFileSync(file, 'utf8').trim();
    } catch {
      have = readdirSync(path.join(this.root, 'layers')).length > 0 ? 'trusted.overlay.opaque' : undefined;
    }
    if (have === undefined) writeFileSync(file, `${want}\n`);
    else if (have !== want) {
      const maker = (x: string) => (x.startsWith('user.') ? 'rootless (in a user namespace)' : 'as root');
      throw new UsageError(`${this.root} holds layers made ${maker(have)}, which a build made ${maker(want)} cannot use: give it a store of its own (--root DIR or TSBUILD_ROOT)`);
    }
  }

  /**
   * This process's mark on its temp dirs: they are named `<purpose>-<token>-<n>`, and it holds an
   * flock on tmp/.owner-<token> until it exits, however it exits. A sweeper that can take the lock
   * knows the owner is gone: in any PID namespace, and even while it is a zombie.
   */
  private owner?: { token: string; fd: number; next: number };

  private ownerToken(): { token: string; fd: number; next: number } {
    if (!this.owner) {
      const token = `${process.pid}-${randomHex(4)}`;
      const fd = openSync(path.join(this.tmpDir, `${OWNER_PREFIX}${token}`), 'w', 0o600);
      native().tryLock(fd, true);
      this.owner = { token, fd, next: 0 };
    }
    return this.owner;
  }

  /** Work space that disappears when this process ends (see `cleanup`), or on the next start after a crash. */
  makeTemp(purpose: string): string {
    const owner = this.ownerToken();
    const dir = path.join(this.tmpDir, `${purpose}-${owner.token}-${owner.next++}`);
    mkdirSync(dir, { recursive: true });
    this.temps.add(dir);
    return dir;
  }

  removeTemp(dir: string): void {
    try {
      rmdirSync(dir); // most step dirs are empty by now: one syscall instead of a recursive walk
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
    this.temps.delete(dir);
  }

  /** Removes this process's temp dirs, and its owner mark. Safe to call more than once. */
  cleanup(): void {
    for (const dir of [...this.temps]) this.removeTemp(dir);
    if (this.owner) {
      rmSync(path.join(this.tmpDir, `${OWNER_PREFIX}${this.owner.token}`), { force: true });
      closeSync(this.owner.fd);
      this.owner = undefined;
    }
  }

  /**
   * What a killed command left behind: temp dirs, and temp siblings of atomic writes (blobs, links,
   * images.json), whose owner process is gone. Nothing else can be half-written: every file reaches
   * its real name by rename.
   */
  private removeStaleTemps(warn: (line: string) => void): void {
    const dead = (pid: number | undefined) => pid !== undefined && Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
    const cannotRemove = (file: string, err: unknown) => warn(`tsbuild: warning: cannot remove ${file}, left by a killed command: ${err instanceof Error ? err.message : String(err)}`);
    const names = readdirSync(this.tmpDir);
    const deadTokens = new Map<string, number>();
    for (const name of names) {
      if (!name.startsWith(OWNER_PREFIX)) continue;
      const token = name.slice(OWNER_PREFIX.length);
      let fd: number;
      try {
        fd = openSync(path.join(this.tmpDir, name), 'r');
      } catch {
        continue; // its owner just ended and removed it
      }
      if (native().tryLock(fd, true)) deadTokens.set(token, fd);
      else closeSync(fd);
    }
    const stale = names.filter((name) => {
      if (name.startsWith(OWNER_PREFIX)) return false;
      const token = tokenOf(name);
      if (token !== undefined) return deadTokens.has(token) || (!names.includes(`${OWNER_PREFIX}${token}`) && dead(Number(token.split('-')[0])));
      return dead(Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1])); // named before owner marks
    });
    const kept = new Set<string>(); // tokens with something left: their mark stays, for the next sweep
    if (stale.length > 0) {
      const mounts = mountPointsUnder(this.tmpDir);
      for (const name of stale) {
        const dir = path.join(this.tmpDir, name);
        const why = (err: unknown) => {
          cannotRemove(dir, err);
          kept.add(tokenOf(name) ?? '');
        };
        if (mounts.some((m) => m === dir || m.startsWith(`${dir}/`))) {
          why('something is mounted in it');
          continue;
        }
        // moved aside under a temp name of this process first: of two sweepers only one gets it,
        // and if this one is killed half-way, the next sweeps the rest
        const aside = this.makeTemp('stale');
        try {
          renameSync(dir, path.join(aside, 'x'));
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') why(err);
          this.removeTemp(aside);
          continue;
        }
        try {
          this.removeTemp(aside);
        } catch (err) {
          why(err);
        }
      }
    }
    for (const [token, fd] of deadTokens) {
      if (!kept.has(token)) rmSync(path.join(this.tmpDir, `${OWNER_PREFIX}${token}`), { force: true });
      closeSync(fd);
    }
    // images.json and the other root files can be written by any command; blobs and links only by
    // builds, loads and imports, which hold a temp dir while they do: only when one was left behind
    // are the (large) blob and link directories worth listing
    const dirs = stale.length > 0 ? [this.root, ...['blobs/sha256', 'l', 'cache', 'stat-cache', 'compressed'].map((d) => path.join(this.root, d))] : [this.root];
    for (const dir of dirs) {
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        if (!dead(tempSiblingOwner(name))) continue;
        try {
          rmSync(path.join(dir, name), { force: true });
        } catch (err) {
          cannotRemove(path.join(dir, name), err);
        }
      }
    }
  }

  /** Serialises changes to images.json between processes. */
  withLock<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'store.lock'), fn);
  }

  /**
   * Builds and loads hold this shared while they run; prune and rmi take it exclusively, so they never
   * remove a layer a running build is using (and wait for running builds to end).
   */
  inUse<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'gc.lock'), fn, 24 * 3600_000, true);
  }

  collecting<T>(fn: () => Promise<T> | T): Promise<T> {
    return withFileLock(path.join(this.root, 'locks', 'gc.lock'), fn, 24 * 3600_000);
  }
}

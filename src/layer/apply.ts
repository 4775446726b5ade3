// Layer tar to directory (overlay form), never writing outside it.
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeSync,
  constants,
} from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { errnoCode, IntegrityError, UsageError } from '../errors.js';
import { inUserNamespace, mappedIds } from '../util/user-namespace.js';
import { isWithin, resolveInRoot } from '../fs/resolve.js';
import { ADDON_THREADS, native } from '../native/index.js';
import type { TarReadEntry } from './tar-reader.js';
import { isOverlayXattr, OPAQUE_MARKER, overlayOpaqueXattr, WHITEOUT_PREFIX } from '../fs/whiteout.js';
import { lstatOrNull } from '../fs/lstat.js';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export interface ApplyResult {
  /** Sum of regular file sizes written (hard links not counted). */
  contentSize: number;
}


/**
 * Rethrows an error from giving a file the owner the tar names. In a user namespace (rootless)
 * only the ids it maps can own files: an image whose files belong to others needs more subordinate ids.
 */
function ownerError(err: unknown, e: TarReadEntry): never {
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (code === 'EINVAL' && /chown$/.test(syscall ?? '') && inUserNamespace()) {
    throw new UsageError(
      `"${e.path}" belongs to ${e.uid}:${e.gid}, beyond the ${mappedIds('uid')} uids and ${mappedIds('gid')} gids this rootless build maps: give the user more subordinate ids in /etc/subuid and /etc/subgid`,
      { cause: err },
    );
  }
  throw err;
}

/** Gives a file the owner the tar names (see ownerError). */
function chownEntry(target: string, e: TarReadEntry): void {
  try {
    lchownSync(target, e.uid, e.gid);
  } catch (err) {
    ownerError(err, e);
  }
}

/** Removes whatever is at `p` (file, link, device or whole directory). */
function clear(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/**
 * Splits an entry path into components, refusing any that could leave the layer: `..` anywhere
 * (even where it would cancel out), and empty or `.` components are dropped. Null means the root.
 */
function safeComponents(p: string, shown: string): string[] | null {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new IntegrityError(`layer entry "${shown}" contains "..": refused`);
  return parts.length === 0 ? null : parts;
}

/** Attributes a directory the tar does not list should get: those the layers below give it. */
export type ParentAttrs = (rootfsPath: string) => { mode: number; uid: number; gid: number; mtime: number } | undefined;

/**
 * Creates the missing directories of `comps` (already resolved inside `dest`) one by one: with the
 * attributes of the same directory in the layers below when `parentAttrs` knows it (overlayfs takes
 * a directory's owner and mode from the topmost layer that has it), else root 0755.
 */
function makeParents(dest: string, host: string, parentAttrs: ParentAttrs | undefined): void {
  const rel = path.relative(dest, host);
  if (rel === '') return;
  let cur = dest;
  for (const c of rel.split(path.sep)) {
    cur = path.join(cur, c);
    if (lstatOrNull(cur)) continue;
    mkdirSync(cur, { mode: 0o755 });
    const below = parentAttrs?.(`/${path.relative(dest, cur)}`);
    if (below) {
      lchownSync(cur, below.uid, below.gid);
      chmodSync(cur, below.mode);
      lutimesSync(cur, below.mtime, below.mtime);
    }
  }
}

/**
 * Host directories already resolved for the tar paths of entries' parents: an entry whose parent
 * was seen costs no lookups. Anything this extraction removes drops them all (a removed directory,
 * or one replaced, could be on any cached path).
 */
class ParentDirs {
  private readonly known = new Map<string, string>();
  /**
   * Directories' times, set last (writing into a directory changes its mtime). The later entry of
   * one directory gives its time; a directory removed or replaced gives none.
   */
  readonly dirTimes = new Map<string, number>();

  constructor(
    private readonly dest: string,
    private readonly parentAttrs: ParentAttrs | undefined,
  ) {}

  /** The host directory for a parent (components from the layer's root), made if missing. */
  get(parentComps: readonly string[], shown: string): string {
    if (parentComps.length === 0) return this.dest;
    const key = parentComps.join('/');
    const cached = this.known.get(key);
    if (cached !== undefined) return cached;
    const parent = resolveInRoot(this.dest, key);
    if (!isWithin(this.dest, parent)) throw new IntegrityError(`layer entry "${shown}" resolves outside the layer`);
    makeParents(this.dest, parent, this.parentAttrs);
    if (!lstatSync(parent).isDirectory()) throw new IntegrityError(`layer entry "${shown}": parent is not a directory`);
    this.known.set(key, parent);
    return parent;
  }

  /** Removes whatever is at `p`; every resolved parent is forgotten, and the times of what was there. */
  clear(p: string): void {
    clear(p);
    this.known.clear();
    const below = `${p}${path.sep}`;
    for (const d of this.dirTimes.keys()) if (d === p || d.startsWith(below)) this.dirTimes.delete(d);
  }
}

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Creates a new entry with `make`, which fails with EEXIST when something is at `target` already:
 * that is then removed first (a directory is kept when `keepDir`, returning false: nothing made).
 */
function create(parents: ParentDirs, target: string, make: () => void, keepDir = false): boolean {
  try {
    make();
    return true;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
  if (keepDir && lstatOrNull(target)?.isDirectory()) return false;
  parents.clear(target);
  make();
  return true;
}

const EMPTY = Buffer.alloc(0);

/** A regular file whose whole content is in hand, in one native call (what is at `target` removed first). */
function writeWhole(parents: ParentDirs, target: string, data: Buffer, e: TarReadEntry): void {
  create(parents, target, () => native().writeNewFile(target, data, e.uid, e.gid, e.mode, e.mtime));
}

/** A file's body, started: its first chunk read (to tell whether it came whole). */
interface Body {
  chunks: AsyncIterator<Buffer>;
  head: Buffer;
}

async function startBody(e: TarReadEntry): Promise<Body> {
  const chunks = e.body()[Symbol.asyncIterator]();
  const first = await chunks.next();
  return { chunks, head: first.done ? EMPTY : first.value };
}

/**
 * Writes a regular file's content and metadata: a file whose content came in one chunk in one
 * native call, a bigger one through a descriptor. No body: an empty placeholder, whatever the entry holds.
 */
async function writeFile(parents: ParentDirs, target: string, e: TarReadEntry, body?: Body): Promise<void> {
  const head = body?.head ?? EMPTY;
  try {
    if (head.length === (body ? e.size : 0)) writeWhole(parents, target, head, e);
    else {
      let fd = -1;
      create(parents, target, () => (fd = openSync(target, CREATE, 0o600)));
      try {
        for (let chunk = head; ; ) {
          let off = 0;
          while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          const next = await body!.chunks.next();
          if (next.done) break;
          chunk = next.value;
        }
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      native().finishFile(fd, e.uid, e.gid, e.mode, e.mtime);
    }
  } catch (err) {
    ownerError(err, e);
  }
  setXattrs(target, e);
}

/** Small files gathered to be created together, at most this many or this many bytes at once. */
const BATCH_FILES = 1024;
const BATCH_BYTES = 16 << 20;
const FAILED_STEP = ['', 'open', 'write', 'fchown', 'fchmod', 'futimens'];

/**
 * Regular files that came whole, created together on threads by the addon (writeNewFiles): a layer
 * of 100,000 small files is that many creations, each a few syscalls of the kernel's. Anything
 * that must come after them (an entry at or below one of their paths, any entry not such a file)
 * flushes the batch first, so the layer is what applying the entries in order makes.
 */
class FileBatch {
  private targets: string[] = [];
  private datas: Buffer[] = [];
  private entries: TarReadEntry[] = [];
  private readonly keys = new Set<string>();
  private bytes = 0;

  constructor(private readonly parents: ParentDirs) {}

  /** Whether an entry at these components must wait for the batch: it is, or is below, one of its files. */
  blocks(comps: readonly string[]): boolean {
    if (this.keys.size === 0) return false;
    let key = '';
    for (const c of comps) {
      key = key === '' ? c : `${key}/${c}`;
      if (this.keys.has(key)) return true;
    }
    return false;
  }

  add(comps: readonly string[], target: string, data: Buffer, e: TarReadEntry): void {
    this.keys.add(comps.join('/'));
    this.targets.push(target);
    this.datas.push(data);
    this.entries.push(e);
    this.bytes += data.length;
    if (this.targets.length >= BATCH_FILES || this.bytes >= BATCH_BYTES) this.flush();
  }

  flush(): void {
    const { targets, datas, entries } = this;
    if (targets.length === 0) return;
    this.targets = [];
    this.datas = [];
    this.entries = [];
    this.keys.clear();
    this.bytes = 0;
    const meta = new Float64Array(4 * entries.length);
    for (const [i, e] of entries.entries()) meta.set([e.uid, e.gid, e.mode, e.mtime], 4 * i);
    const results = new Int32Array(2 * entries.length);
    native().writeNewFiles(`${targets.join('\0')}\0`, datas, meta, results, ADDON_THREADS);
    for (const [i, e] of entries.entries()) {
      const errno = results[2 * i]!;
      if (errno === 0) continue;
      const target = targets[i]!;
      const step = FAILED_STEP[results[2 * i + 1]!]!;
      try {
        // something there already (an earlier layer entry of the same name): removed, then made alone
        if (step === 'open' && errno === osConstants.errno.EEXIST) writeWhole(this.parents, target, datas[i]!, e);
        else {
          const [code, message] = getSystemErrorMap().get(-errno) ?? ['EIO', 'i/o error'];
          throw Object.assign(new Error(`${step} ${target}: ${message}`), { code, errno, syscall: step });
        }
      } catch (err) {
        ownerError(err, e);
      }
    }
  }
}

function setXattrs(target: string, e: TarReadEntry): void {
  for (const [name, value] of e.xattrs ?? []) {
    if (isOverlayXattr(name)) continue; // overlayfs's own markers: a layer's tar cannot hide files through them
    if (name.startsWith('trusted.') && inUserNamespace()) continue; // only the machine's root may set them
    native().setXattr(target, name, value);
  }
}

/**
 * Applies a layer tar to an empty directory, producing the layer in overlay form (whiteouts as 0/0
 * character devices, opaque directories marked by xattr), ready to be an overlay lowerdir.
 *
 * Nothing is ever written outside `dest`: entries with `..` are refused, parent directories are
 * resolved inside `dest` (symlinks followed as in a chroot), `dest` itself is never replaced, files
 * are created with O_NOFOLLOW|O_EXCL (what was there is removed first), and hard link targets must
 * be inside `dest`.
 */
export async function applyLayer(entries: AsyncIterable<TarReadEntry>, dest: string, parentAttrs?: ParentAttrs): Promise<ApplyResult> {
  const parents = new ParentDirs(dest, parentAttrs);
  const batch = new FileBatch(parents);
  let contentSize = 0;
  for await (const e of entries) {
    const comps = safeComponents(e.path, e.path);
    if (comps === null) continue; // the root itself: keep dest as it is
    const base = comps.at(-1)!;
    const plainFile = e.type === 'file' && base !== OPAQUE_MARKER && !base.startsWith(WHITEOUT_PREFIX);
    const body = plainFile ? await startBody(e) : undefined;
    const batched = body !== undefined && body.head.length === e.size && !e.xattrs;
    // what comes after the batch's files waits for them: anything at or below their paths, and any
    // entry but such a file or a directory (directories' times are set at the end anyway)
    if ((!batched && e.type !== 'dir') || batch.blocks(comps)) batch.flush();
    const parent = parents.get(comps.slice(0, -1), e.path);

    if (base === OPAQUE_MARKER) {
      native().setXattr(parent, overlayOpaqueXattr(), Buffer.from('y'));
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === '' || name === '.' || name === '..') throw new IntegrityError(`layer entry "${e.path}" is not a valid whiteout`);
      const target = path.join(parent, name);
      create(parents, target, () => native().mknod(target, S_IFCHR | 0o600, 0, 0));
      chownEntry(target, e);
      lutimesSync(target, e.mtime, e.mtime); // as archived: the layer's files give back the same tar
      continue;
    }

    const target = path.join(parent, base);
    switch (e.type) {
      case 'file':
        if (batched) batch.add(comps, target, body.head, e);
        else await writeFile(parents, target, e, body);
        contentSize += e.size;
        continue;
      case 'dir':
        create(parents, target, () => mkdirSync(target, { mode: 0o700 }), true);
        parents.dirTimes.set(target, e.mtime);
        break;
      case 'symlink':
        create(parents, target, () => symlinkSync(e.linkname ?? '', target));
        break;
      case 'hardlink': {
        const linkComps = safeComponents(e.linkname ?? '', e.path);
        if (linkComps === null) throw new IntegrityError(`layer entry "${e.path}" is a hard link to the root`);
        const linkTarget = resolveInRoot(dest, linkComps.join('/'), false);
        if (!isWithin(dest, linkTarget) || !lstatOrNull(linkTarget)) {
          throw new IntegrityError(`layer entry "${e.path}" links to "${e.linkname}", which is not in the layer`);
        }
        if (linkTarget !== target) create(parents, target, () => linkSync(linkTarget, target));
        continue; // a hard link shares its target's metadata
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
        const whiteout = kind === S_IFCHR && !e.devmajor && !e.devminor;
        if (kind !== S_IFIFO && !whiteout && inUserNamespace()) {
          // a user namespace refuses device nodes: rootless, an empty file holds the path (so no
          // lower layer's file shows through); a step's /dev is its own anyway, and the layer's
          // blob keeps the node
          await writeFile(parents, target, e);
          continue;
        }
        create(parents, target, () => native().mknod(target, kind | 0o600, e.devmajor ?? 0, e.devminor ?? 0));
        break;
      }
    }
    chownEntry(target, e);
    if (e.type !== 'symlink') chmodSync(target, e.mode); // after chown, which clears setuid bits
    setXattrs(target, e);
    if (e.type !== 'dir') lutimesSync(target, e.mtime, e.mtime);
  }
  batch.flush();
  for (const [dir, mtime] of parents.dirTimes) lutimesSync(dir, mtime, mtime);
  return { contentSize };
}

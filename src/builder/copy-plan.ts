// A COPY/ADD/WORKDIR layer planned in memory and written as a tar in one pass.
import { TsbuildError } from '../errors.js';
import { dirFd } from '../fs/dir-fds.js';
import { ADDON_THREADS, native } from '../native/index.js';
import type { EntryStat } from '../fs/scan-dir.js';
import { components } from '../fs/resolve.js';
import type { RootfsView } from '../fs/rootfs-view.js';
import { TarWriter, type Expected } from '../layer/tar-writer.js';
import type { ByteSink } from '../util/sink.js';
import type { LayerTarResult } from '../layer/diff.js';
import { BLOCK, USTAR_MAX_NUMBER, USTAR_MAX_SIZE } from '../layer/tar-format.js';
import { cannotRead, isSent, SourceError, type SourceTree } from './source-tree.js';

/** Small files of a directory written together as the tar is written: at most this many, or bytes, at once. */
const RUN_FILE = 64 * 1024;
const RUN_FILES = 4096;
const RUN_BYTES = 16 << 20;

/** A plan entry the addon can write as one plain ustar entry: a small context file, not hard-linked, no xattrs. */
function plainSmallFile(child: PlanNode, tarPath: string, mtime: number): boolean {
  return (
    child.kind === 'file' &&
    child.expected?.within !== undefined &&
    child.inode === undefined &&
    !child.xattrs &&
    child.size <= RUN_FILE &&
    child.uid >= 0 && child.uid <= USTAR_MAX_NUMBER &&
    child.gid >= 0 && child.gid <= USTAR_MAX_NUMBER &&
    Number.isInteger(mtime) && mtime >= 0 && mtime <= USTAR_MAX_SIZE &&
    !tarPath.includes('\0') && Buffer.byteLength(tarPath) < 100
  );
}

type RunFile = { node: PlanNode; path: string; mtime: number };

/** The small context files (plainSmallFile, beneath one context) among a directory's sorted entries from `from` on, up to the first other. */
function smallFileRun(node: PlanNode, names: readonly string[], from: number, prefix: string, clamp: (mtime: number) => number): RunFile[] {
  const run: RunFile[] = [];
  const root = node.children!.get(names[from]!)!.expected?.within?.dir;
  for (let j = from, bytes = 0; j < names.length && run.length < RUN_FILES; j++) {
    const next = node.children!.get(names[j]!)!;
    const path = prefix ? `${prefix}/${names[j]}` : names[j]!;
    const mtime = clamp(next.mtime);
    if (!plainSmallFile(next, path, mtime) || next.expected!.within!.dir !== root) break;
    if (run.length > 0 && bytes + next.size > RUN_BYTES) break;
    bytes += next.size;
    run.push({ node: next, path, mtime });
  }
  return run;
}

/**
 * The tar entries of a run of small context files (consecutive in the tar, beneath one context),
 * header and content, made on the addon's threads: a layer of 100,000 small files is that many
 * opens, reads and headers. Each file must still be the one planned, as the tar writer checks.
 */
function tarRun(root: string, run: readonly RunFile[]): Buffer {
  const meta = new Float64Array(8 * run.length);
  let size = 0;
  for (const [i, { node, mtime }] of run.entries()) {
    meta.set([node.expected!.dev, node.expected!.ino, node.size, node.mode, node.uid, node.gid, mtime, size], 8 * i);
    size += BLOCK + Math.ceil(node.size / BLOCK) * BLOCK;
  }
  const out = Buffer.alloc(size);
  const ok = new Uint8Array(run.length);
  const errs = new Int32Array(run.length);
  const paths = run.map((f) => `${f.node.expected!.within!.rel}\0`).join('');
  const names = run.map((f) => `${f.path}\0`).join('');
  native().tarFiles(dirFd(root), paths, names, meta, out, ok, errs, ADDON_THREADS);
  for (const [i, { node }] of run.entries()) {
    if (ok[i] === 1) continue;
    if (ok[i] === 0) throw new TsbuildError(`${node.source} changed while it was being copied`);
    throw cannotRead(errs[i]!, node.source!);
  }
  return out;
}

interface PlanNode {
  kind: 'dir' | 'file' | 'symlink';
  /** Absolute path in the rootfs. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  /** Host file whose bytes become this file's content, and what it must still be when read. */
  source?: string;
  expected?: Expected;
  linkname?: string;
  /** For a file with other hard links: which inode of which source, so that its links stay links. */
  inode?: string;
  /** The content itself, when the source tree kept it from hashing (SourceTree.takeContent). */
  content?: Buffer;
  /** Kept from another stage or image (SourceTree.xattrs). */
  xattrs?: Map<string, Buffer>;
  children?: Map<string, PlanNode>;
  /** A directory the image has too: only below one can the image have anything this layer replaces. */
  inImage?: boolean;
}

export interface Ownership {
  uid: number;
  gid: number;
}

export interface SourceOptions {
  /** Owner of everything added; when absent, entries keep the source's (ADD of an archive). */
  owner?: Ownership;
  /** --chmod: replaces the mode of everything copied. */
  mode?: number;
  /** Unpacking an archive (ADD): entries replace what is there, whatever its type. */
  replace?: boolean;
  /**
   * Hard links between the files of one source (a directory, an archive, one wildcard match) stay
   * links in the layer, as BuildKit's copier keeps them within one copy: its number tells sources apart.
   */
  source?: number;
}

const sortBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * The layer a COPY makes, planned in memory (metadata only, never file contents) and then written
 * as a layer tar in one pass that reads each source file once. Nothing is materialised on disk: the
 * tar is the layer, and it is extracted only if a later step needs to mount or read it.
 *
 * Directories the image already has are recorded as overlayfs would copy them up (owner and mode
 * from the image); those that receive new entries get the build time as mtime.
 */
export class LayerPlan {
  private readonly root: PlanNode = { kind: 'dir', path: '/', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, children: new Map(), inImage: true };

  constructor(
    private readonly view: RootfsView,
    private readonly now: number,
    /** SOURCE_DATE_EPOCH: no mtime in the layer is later. */
    private readonly clampMtime?: number,
  ) {}

  get empty(): boolean {
    return this.root.children!.size === 0;
  }

  /** The directory node at a resolved absolute path, created (copy-up or fresh) as needed. */
  dir(absPath: string, fresh: Ownership & { mode: number }): PlanNode {
    let node = this.root;
    const parts = components(absPath);
    parts.forEach((part, i) => {
      const existing = node.children!.get(part);
      if (existing?.kind === 'dir') {
        node = existing;
        return;
      }
      const p = `/${parts.slice(0, i + 1).join('/')}`;
      const below = node.inImage ? this.view.resolve(p, false).entry?.stat : undefined;
      const inImage = below?.isDirectory() === true;
      const attrs = inImage ? { mode: below!.mode & 0o7777, uid: below!.uid, gid: below!.gid } : { mode: fresh.mode, uid: fresh.uid, gid: fresh.gid };
      const created: PlanNode = { kind: 'dir', path: p, ...attrs, mtime: this.now, size: 0, children: new Map(), inImage };
      node.children!.set(part, created);
      node = created;
    });
    return node;
  }

  /**
   * What is at `path` before this entry lands there: planned by this COPY, or in the image. As in
   * BuildKit, a directory never replaces a file or symlink, nor a file a directory.
   */
  private checkReplace(parent: PlanNode, name: string, kind: PlanNode['kind'], replace = false): { path: string; inImage: boolean } {
    const p = parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
    const st = parent.inImage ? this.view.resolve(p, false).entry?.stat : undefined;
    const inImage = st?.isDirectory() === true;
    if (replace) return { path: p, inImage };
    const existing = parent.children!.get(name)?.kind ?? (st ? (inImage ? 'dir' : 'file') : undefined);
    if (kind === 'dir' && existing !== undefined && existing !== 'dir') throw new SourceError(`cannot copy to non-directory: ${p}`);
    if (kind !== 'dir' && existing === 'dir') throw new SourceError(`cannot replace to directory ${p} with file`);
    return { path: p, inImage };
  }

  /** Adds a tree entry (and, for a directory, what .dockerignore keeps below it) as `name` in `parent`. */
  addSource(parent: PlanNode, name: string, tree: SourceTree, comps: readonly string[], opts: SourceOptions, st: EntryStat): void {
    const xattrs = st.isSymbolicLink() ? undefined : tree.xattrs?.(comps);
    const attrs = { uid: opts.owner?.uid ?? st.uid, gid: opts.owner?.gid ?? st.gid, mtime: Math.floor(st.mtimeMs / 1000), mode: opts.mode ?? st.mode & 0o7777, ...(xattrs ? { xattrs } : {}) };
    if (st.isDirectory()) {
      const { path: p, inImage } = this.checkReplace(parent, name, 'dir', opts.replace);
      const existing = parent.children!.get(name);
      const node: PlanNode = existing?.kind === 'dir' ? Object.assign(existing, attrs) : { kind: 'dir', path: p, ...attrs, size: 0, children: new Map(), inImage };
      parent.children!.set(name, node);
      this.addDirContents(node, tree, comps, opts);
    } else if (st.isFile()) {
      const p = this.checkReplace(parent, name, 'file', opts.replace).path;
      const inode = st.nlink > 1 ? `${opts.source ?? 0}:${st.dev}:${st.ino}` : undefined;
      const rel = comps.join('/');
      const content = tree.takeContent?.(comps, rel);
      parent.children!.set(name, { kind: 'file', path: p, ...attrs, size: st.size, ...(content ? { content } : {}), source: tree.hostPath(comps), expected: { dev: st.dev, ino: st.ino, ...(tree.confinedTo !== undefined ? { within: { dir: tree.confinedTo, rel } } : {}) }, inode });
    } else if (st.isSymbolicLink()) {
      const p = this.checkReplace(parent, name, 'symlink', opts.replace).path;
      parent.children!.set(name, { kind: 'symlink', path: p, ...attrs, mode: 0o777, size: 0, linkname: tree.readlink(comps) });
    }
    // sockets, devices and fifos are not copied
  }

  /** Adds the contents of a tree directory into a directory node (listed once, with each entry's lstat). */
  addDirContents(node: PlanNode, tree: SourceTree, comps: readonly string[], opts: SourceOptions): void {
    const prefix = comps.length > 0 ? `${comps.join('/')}/` : '';
    for (const [name, st] of tree.list(comps)) {
      // a directory an exception pattern reaches into is copied like any other (--chmod, --chown),
      // holding only what is kept inside
      if (isSent(tree, prefix + name, st)) this.addSource(node, name, tree, [...comps, name], opts, st);
    }
  }

  /** Adds a file with the given content (a heredoc source, or a downloaded file). */
  addFile(parent: PlanNode, name: string, hostFile: string, size: number, attrs: Ownership & { mode: number; mtime: number }): void {
    const p = this.checkReplace(parent, name, 'file').path;
    parent.children!.set(name, { kind: 'file', path: p, ...attrs, size, source: hostFile });
  }

  /**
   * Writes the planned layer as a tar, in the same order writeLayerTar uses: the first path of a
   * hard-linked file holds its content, the others are hard-link entries naming it. Returns the
   * content size.
   */
  async write(sink: ByteSink): Promise<LayerTarResult> {
    let contentSize = 0;
    const linked = new Map<string, string>();
    const tar = new TarWriter(sink);
    const clamp = (mtime: number) => (this.clampMtime !== undefined && mtime > this.clampMtime ? this.clampMtime : mtime);
    const walk = async (node: PlanNode, prefix: string): Promise<void> => {
      const names = [...node.children!.keys()].sort(sortBytes);
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        const child = node.children!.get(name)!;
        const p = prefix ? `${prefix}/${name}` : name;
        const mtime = clamp(child.mtime);
        const run = smallFileRun(node, names, i, prefix, clamp);
        if (run.length > 0) {
          await tar.bytes(tarRun(child.expected!.within!.dir, run));
          for (const f of run) {
            contentSize += f.node.size;
            f.node.content = undefined;
          }
          i += run.length - 1;
          continue;
        }
        const base = { path: p, mode: child.mode, uid: child.uid, gid: child.gid, mtime };
        const xattrs = child.xattrs ? { xattrs: child.xattrs } : {};
        if (child.kind === 'dir') {
          await tar.header({ ...base, ...xattrs, type: 'dir', size: 0 });
          await walk(child, p);
        } else if (child.kind === 'symlink') {
          await tar.header({ ...base, type: 'symlink', size: 0, linkname: child.linkname });
        } else if (child.inode !== undefined && linked.has(child.inode)) {
          await tar.header({ ...base, type: 'hardlink', size: 0, linkname: linked.get(child.inode) });
        } else {
          if (child.inode !== undefined) linked.set(child.inode, p);
          await tar.header({ ...base, ...xattrs, type: 'file', size: child.size });
          if (child.content) await tar.bytes(child.content);
          else await tar.content(child.source!, child.size, child.expected);
          contentSize += child.size;
        }
      }
    };
    await walk(this.root, '');
    return { ...(await tar.end()), contentSize };
  }
}

// Directory (overlay form) to layer tar: the diffID of an upper dir, and its bytes.
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors.js';
import { native } from '../native/index.js';
import type { ByteSink } from '../util/sink.js';
import type { Digest } from '../util/digest.js';
import type { TarEntry } from './tar-format.js';
import { TarWriter } from './tar-writer.js';
import {
  isOverlayXattr,
  isUncapturableOverlayXattr,
  isWhiteoutDevice,
  OPAQUE_MARKER,
  overlayOpaqueXattr,
  WHITEOUT_PREFIX,
} from '../fs/whiteout.js';

export interface LayerTarResult {
  diffId: Digest;
  /** Bytes of the tar. */
  size: number;
  /** Sum of regular file sizes (hard links once): what `docker history` shows as SIZE. */
  contentSize: number;
  /** Whiteouts and opaque directories: paths of the layers below that it deletes or replaces. */
  removes?: number;
}

export function deviceNumbers(rdev: number): { major: number; minor: number } {
  // glibc's encoding of dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
  const hi = Math.floor(rdev / 2 ** 32) >>> 0;
  const lo = rdev >>> 0;
  return {
    major: (((lo >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0,
    minor: ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) * 2 ** 20)) >>> 0,
  };
}

/** A file's xattrs as a layer tar carries them (overlayfs's own left out). */
export function xattrsOf(file: string): Map<string, Buffer> | undefined {
  const names = native().listXattrs(file);
  let out: Map<string, Buffer> | undefined;
  for (const name of names) {
    if (isUncapturableOverlayXattr(name)) {
      throw new TsbuildError(`cannot capture ${file}: overlayfs recorded it as ${name}; mount with redirect_dir=off,metacopy=off`);
    }
    if (isOverlayXattr(name)) continue;
    const value = native().getXattr(file, name);
    if (value === null) continue;
    out ??= new Map();
    out.set(name, value);
  }
  return out;
}

/**
 * Streams a layer directory in overlay form (an upper dir, or a stored layer's diff/) as a layer tar:
 * entries sorted, numeric ids, whiteout devices as `.wh.NAME`, opaque directories followed by
 * `.wh..wh..opq`, hard links as links, xattrs kept. `clampMtime` (SOURCE_DATE_EPOCH) caps every mtime.
 * Returns the diffID computed over exactly the bytes written.
 */
export async function writeLayerTar(dir: string, out?: ByteSink, opts: { clampMtime?: number } = {}): Promise<LayerTarResult> {
  const tar = new TarWriter(out);
  const seenInodes = new Map<string, string>();
  let contentSize = 0;
  let removes = 0;
  const mtimeOf = (st: Stats) => {
    const t = Math.floor(st.mtimeMs / 1000);
    return opts.clampMtime !== undefined && t > opts.clampMtime ? opts.clampMtime : t;
  };

  const walk = async (rel: string): Promise<void> => {
    const abs = rel ? path.join(dir, rel) : dir;
    // Sorted by the name each entry gets in the tar (a whiteout device `x` becomes `.wh.x`).
    const children = readdirSync(abs).map((name) => {
      const st = lstatSync(path.join(abs, name));
      return { name, st, tarName: isWhiteoutDevice(st) ? `${WHITEOUT_PREFIX}${name}` : name };
    });
    children.sort((a, b) => Buffer.compare(Buffer.from(a.tarName), Buffer.from(b.tarName)));
    for (const { name, st, tarName } of children) {
      const relPath = rel ? `${rel}/${tarName}` : tarName;
      const file = path.join(abs, name);
      const base: Omit<TarEntry, 'type' | 'size'> = { path: relPath, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: mtimeOf(st) };
      if (tarName !== name) {
        removes++;
        await tar.header({ ...base, type: 'file', mode: 0, size: 0 });
        continue;
      }
      const xattrs = xattrsOf(file);
      if (st.isDirectory()) {
        await tar.header({ ...base, type: 'dir', size: 0, xattrs });
        if (native().getXattr(file, overlayOpaqueXattr())?.toString() === 'y') {
          removes++;
          await tar.header({ ...base, path: `${relPath}/${OPAQUE_MARKER}`, type: 'file', mode: 0, size: 0 });
        }
        await walk(relPath);
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seenInodes.get(inode) : undefined;
        if (first !== undefined) {
          await tar.header({ ...base, type: 'hardlink', size: 0, linkname: first, xattrs });
          continue;
        }
        if (st.nlink > 1) seenInodes.set(inode, relPath);
        await tar.header({ ...base, type: 'file', size: st.size, xattrs });
        await tar.content(file, st.size);
        contentSize += st.size;
      } else if (st.isSymbolicLink()) {
        await tar.header({ ...base, type: 'symlink', size: 0, linkname: readlinkSync(file), xattrs });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = deviceNumbers(st.rdev);
        await tar.header({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', size: 0, devmajor: major, devminor: minor, xattrs });
      } else if (st.isFIFO()) {
        await tar.header({ ...base, type: 'fifo', size: 0, xattrs });
      }
      // sockets are not archived, as in Docker
    }
  };

  await walk('');
  const { diffId, size } = await tar.end();
  return { diffId, size, contentSize, removes };
}

// A RUN step's init layer: mount points, so mounting never writes into its layer.
import { chmodSync, existsSync, lchownSync, lutimesSync, mkdirSync, writeFileSync } from 'node:fs';
import { components } from '../fs/resolve.js';
import path from 'node:path';
import type { RootfsView } from '../fs/rootfs-view.js';

/** A RUN --mount target the image's filesystem cannot hold a mount point for. */
export class MountPointError extends Error {}

/** Mount points a RUN step needs: directories for kernel filesystems, files for bind mounts. */
const INIT_DIRS = ['proc', 'dev', 'sys', 'etc'];
export const INIT_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

/**
 * Builds the init layer for one RUN step (Docker's `-init` layer): a read-only lowerdir above the
 * image's layers holding the mount points for /proc, /dev, /sys, /etc/hosts, /etc/hostname and
 * /etc/resolv.conf, so that mounting them never writes into the captured upper dir.
 *
 * Its directories copy the image's own ownership, mode and mtime (root included): overlayfs takes a
 * directory's attributes from the topmost layer, and a file created in /etc must not change /etc's
 * owner or mode in the new layer. Returns which of INIT_FILES can be bind-mounted.
 */
export function makeInitLayer(dir: string, view: RootfsView, points: ReadonlyArray<{ path: string; file: boolean }> = []): string[] {
  mkdirSync(dir, { recursive: true });
  mirror(dir, view, '/');
  for (const p of points) addMountPoint(dir, view, p.path, p.file);
  let etc = false;
  for (const d of INIT_DIRS) {
    const existing = view.resolve(`/${d}`, false).entry;
    if (existing && !existing.stat.isDirectory()) continue; // a file or symlink there: leave it alone
    if (!existsSync(path.join(dir, d))) mkdirSync(path.join(dir, d), { mode: 0o755 }); // a mount point below it may have made it
    mirror(path.join(dir, d), view, `/${d}`);
    if (d === 'etc') etc = true;
  }
  if (!etc) return [];
  for (const f of INIT_FILES) if (!existsSync(path.join(dir, f))) writeFileSync(path.join(dir, f), '', { mode: 0o644 });
  mirror(path.join(dir, 'etc'), view, '/etc'); // creating the files changed its mtime
  return INIT_FILES;
}

/**
 * A mount point for RUN --mount: its parent directories mirror the image's, the point itself is an
 * empty directory (or file). Where the image has the target already, overlayfs shows the mount
 * point over it only while the step runs; nothing of it reaches the layer.
 */
function addMountPoint(dir: string, view: RootfsView, target: string, file: boolean): void {
  const parts = components(view.resolve(target).path);
  let host = dir;
  for (let i = 0; i < parts.length; i++) {
    host = path.join(host, parts[i]!);
    const last = i === parts.length - 1;
    const inImage = `/${parts.slice(0, i + 1).join('/')}`;
    const st = view.resolve(inImage, false).entry?.stat;
    // a directory here in the init layer would hide the image's file from the step
    if (st && !st.isDirectory() && !last) throw new MountPointError(`target ${target}: ${inImage} is not a directory in the image`);
    if (st && last && st.isDirectory() === file) {
      throw new MountPointError(`target ${target} is a ${file ? 'directory' : 'file'} in the image, and the mount is a ${file ? 'file' : 'directory'}`);
    }
    if (existsSync(host)) continue;
    if (last && file) writeFileSync(host, '', { mode: 0o644 });
    else {
      mkdirSync(host, { mode: 0o755 });
      mirror(host, view, `/${parts.slice(0, i + 1).join('/')}`);
    }
  }
}

function mirror(hostDir: string, view: RootfsView, inRootfs: string): void {
  const st = view.resolve(inRootfs, false).entry?.stat;
  if (!st || !st.isDirectory()) {
    chmodSync(hostDir, 0o755);
    return;
  }
  lchownSync(hostDir, st.uid, st.gid);
  chmodSync(hostDir, st.mode & 0o7777);
  lutimesSync(hostDir, st.atime, st.mtime);
}

import { chmodSync, lchownSync, lutimesSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { components } from '../fs/resolve.js';
import type { RootfsView } from '../fs/rootfs-view.js';
import { lstatOrNull } from '../fs/lstat.js';

export interface Ownership {
  uid: number;
  gid: number;
}


/**
 * Makes sure directory `absPath` (already resolved: no symlinks) exists in a layer directory being
 * built, as overlayfs would on copy-up: directories the image has are recreated with their owner,
 * mode and mtime; missing ones get `fresh`. Returns the host path.
 */
export function materializeDir(view: RootfsView, layerDir: string, absPath: string, fresh: Ownership & { mode: number }): string {
  let host = layerDir;
  const parts = components(absPath);
  for (let i = 0; i < parts.length; i++) {
    host = path.join(host, parts[i]!);
    const have = lstatOrNull(host);
    if (have?.isDirectory()) continue;
    if (have) rmSync(host, { recursive: true, force: true });
    mkdirSync(host);
    const inImage = view.resolve(`/${parts.slice(0, i + 1).join('/')}`, false).entry;
    if (inImage?.stat.isDirectory()) {
      lchownSync(host, inImage.stat.uid, inImage.stat.gid);
      chmodSync(host, inImage.stat.mode & 0o7777);
      lutimesSync(host, inImage.stat.atime, inImage.stat.mtime);
    } else {
      lchownSync(host, fresh.uid, fresh.gid);
      chmodSync(host, fresh.mode);
    }
  }
  return host;
}

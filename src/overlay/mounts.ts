// Every overlay mount: lowerdir lists and option strings, in one place.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DirLayer, type RootfsView } from '../fs/rootfs-view.js';
import type { LayerMeta, LayerStore } from '../store/layers.js';
import { inUserNamespace } from '../util/user-namespace.js';

/**
 * Every overlay mount tsbuild makes, and the only place their lowerdir lists and option strings are
 * written (as containerd's snapshotter hands out mounts and keeps its paths to itself). Lowerdirs
 * are named relative to the store's l/ (short links, as Docker's overlay2/l/), so a mount of 100+
 * layers fits in the one page of options the kernel takes, and no host path shows in a step's
 * /proc/mounts: the sandbox mounts from l/ as its working directory.
 */
export interface OverlayMount {
  /** The directory the lowerdir names are relative to. */
  base: string;
  /** The mount's option string. */
  options: string;
}

/** The kernel takes one page of mount options. */
const MAX_OPTIONS = 4095;

function overlay(base: string, options: string, layers: number): OverlayMount {
  if (options.length > MAX_OPTIONS) throw new Error(`overlay mount options for ${layers} layers exceed one page (${options.length} bytes)`);
  return { base, options };
}

/**
 * Redirects off, so an upper dir stays a plain diff. In a user namespace (rootless) overlayfs keeps
 * its markers (opaque directories) as user.overlay.* xattrs, as apply and diff write and read them
 * there (fs/whiteout.ts), and takes redirect_dir=nofollow, not off, beside them.
 */
function markerOptions(): string {
  return inUserNamespace() ? 'userxattr,redirect_dir=nofollow' : 'redirect_dir=off';
}

/** A RUN step's rootfs mount, with the upper dir it writes into (its layer) and overlayfs's work dir. */
export interface StepRootfs extends OverlayMount {
  upper: string;
  work: string;
  /** Layers kept as EROFS images, to mount before the overlay: IMAGE:DIR, relative to `base`. */
  images: string[];
}

/**
 * A RUN step's rootfs: its init layer over the image's layers (top first), a fresh upper dir and
 * work dir in the step dir (the sandbox makes them). redirect_dir and metacopy stay off, so the
 * upper dir is a plain diff; index stays off, so layers can be shared by many mounts at once.
 */
export function stepRootfs(store: LayerStore, layers: readonly LayerMeta[], initDir: string, stepDir: string): StepRootfs {
  const upper = path.join(stepDir, 'upper');
  const work = path.join(stepDir, 'work');
  const rel = (p: string) => path.relative(store.linksDir, p);
  const images: string[] = [];
  const lowers = layers.map((l) => {
    const image = store.imageMount(l);
    if (!image) {
      store.ensureLink(l);
      return l.link;
    }
    images.push(`${rel(image.file)}:${image.link}`);
    return image.link;
  });
  const options = `lowerdir=${[rel(initDir), ...lowers.reverse()].join(':')},upperdir=${rel(upper)},workdir=${rel(work)},index=off,metacopy=off,${markerOptions()}`;
  return { ...overlay(store.linksDir, options, layers.length), upper, work, images };
}

/**
 * A read-only view of one directory of an image or stage (RUN --mount=from=,source=DIR): that
 * directory in each layer that has it, top first. Without an upper dir overlayfs wants two lowers
 * at least: an empty directory (made in `scratch`) makes up the second.
 */
export function subtreeOverlay(store: LayerStore, view: RootfsView, layers: readonly LayerMeta[], dir: readonly string[], scratch: string): OverlayMount {
  for (const l of layers) store.ensureLink(l);
  const byDir = new Map(layers.map((l) => [store.diffDir(l.chainId), l.link]));
  const lowers = view.dirLayers(dir).map((d) => {
    const link = d instanceof DirLayer ? byDir.get(d.dir) : undefined;
    if (link === undefined) throw new Error('a subtree overlay is made of extracted layers only');
    return path.join(link, ...dir);
  });
  if (lowers.length < 2) {
    mkdirSync(scratch, { recursive: true });
    lowers.push(path.relative(store.linksDir, scratch));
  }
  return overlay(store.linksDir, `lowerdir=${lowers.join(':')},${markerOptions()}`, lowers.length);
}

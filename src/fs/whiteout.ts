import { inUserNamespace } from '../util/user-namespace.js';

/**
 * The two whiteout conventions tsbuild converts between:
 * - in layer tars (OCI, from AUFS): a file `.wh.NAME` deletes NAME, `.wh..wh..opq` makes its
 *   directory opaque;
 * - on disk (overlayfs): a 0/0 character device deletes, xattr `trusted.overlay.opaque=y` makes opaque
 *   (`user.overlay.opaque` in a user namespace, where overlay is mounted with userxattr).
 * Layer directories in the store are kept in overlay form, so they can be lowerdirs as they are.
 */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** The xattr that makes a directory opaque on disk, for the overlay mounts this process can make. */
export function overlayOpaqueXattr(): string {
  return inUserNamespace() ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
}

/** xattrs overlayfs keeps for itself; they never go into a layer tar. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** Overlay features whose xattrs point into other layers and cannot be captured as a plain diff. */
export function isUncapturableOverlayXattr(name: string): boolean {
  return /^(trusted|user)\.overlay\.(redirect|metacopy)$/.test(name);
}

export function isWhiteoutDevice(st: { isCharacterDevice(): boolean; rdev: number }): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

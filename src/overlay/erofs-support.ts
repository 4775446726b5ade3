// Whether RUN steps mount layers as EROFS images (layer/erofs-writer.ts) instead of extracting them.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { inUserNamespace } from '../util/user-namespace.js';

let supported: boolean | undefined;
let failed = false;

/**
 * As the machine's root, on a kernel that mounts EROFS from a plain file (Linux 6.12 and later, no
 * loop device): a user namespace cannot mount EROFS, so rootless builds extract layers, as they do
 * when TSBUILD_EROFS=0 or once a mount of an image has failed in this process.
 */
export function canMountImages(): boolean {
  if (failed || process.env.TSBUILD_EROFS === '0' || inUserNamespace()) return false;
  if (supported === undefined) {
    const [major = 0, minor = 0] = release().split('.').map((n) => Number.parseInt(n, 10));
    let listed = false;
    try {
      listed = /\terofs$/m.test(readFileSync('/proc/filesystems', 'utf8'));
    } catch {
      // no /proc: no EROFS either
    }
    supported = listed && (major > 6 || (major === 6 && minor >= 12));
  }
  return supported;
}

/** A mount of an image failed (a kernel built without file-backed EROFS): layers are extracted from now on. */
export function imageMountFailed(): void {
  failed = true;
}

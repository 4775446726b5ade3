// EROFS's on-disk layout, as far as tsbuild writes and reads it: uncompressed, 4 KiB blocks,
// extended (64-byte) inodes, inline xattrs, flat data with the tail inline.

export const BLOCK_SIZE = 4096;
export const SUPERBLOCK_OFFSET = 1024;
export const MAGIC = 0xe0f5e1e2;
export const INODE_SIZE = 64;
export const DIRENT_SIZE = 12;
export const XATTR_HEADER_SIZE = 12;

/** i_format's data layouts tsbuild uses: data in blocks from raw_blkaddr, or all of it after the inode. */
export const FLAT_PLAIN = 0;
export const FLAT_INLINE = 2;

/** Dirent file types (the kernel's FT_*), by the S_IFMT of the mode. */
const FILE_TYPES: Record<number, number> = { 0o100000: 1, 0o040000: 2, 0o020000: 3, 0o060000: 4, 0o010000: 5, 0o140000: 6, 0o120000: 7 };
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export function fileType(mode: number): number {
  return FILE_TYPES[mode & S_IFMT] ?? 0;
}

/** xattr name prefixes EROFS stores as an index (the name's rest follows); whole names for ACLs. */
const XATTR_PREFIXES: ReadonlyArray<readonly [string, number]> = [
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
];

/** An xattr name as EROFS stores it: [index, rest of the name], or undefined when it has no index. */
export function xattrKey(name: string): readonly [number, string] | undefined {
  for (const [prefix, index] of XATTR_PREFIXES) {
    if (!name.startsWith(prefix)) continue;
    if (index === 2 || index === 3) return name === prefix ? [index, ''] : undefined;
    return [index, name.slice(prefix.length)];
  }
  return undefined;
}

export function xattrName(index: number, rest: string): string | undefined {
  const prefix = XATTR_PREFIXES.find(([, i]) => i === index)?.[0];
  return prefix === undefined ? undefined : prefix + rest;
}

/** The device number as the kernel's new_encode_dev packs it into i_u. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function decodeDev(dev: number): { major: number; minor: number } {
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

export const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

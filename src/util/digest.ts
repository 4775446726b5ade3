// sha256 digests, and random names.
import type * as NodeCrypto from 'node:crypto';
import { createRequire } from 'node:module';
import { native } from '../native/index.js';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

let nodeCrypto: typeof NodeCrypto | undefined;

/**
 * An incremental sha256. node:crypto is loaded on first use: a fully cached build hashes only short
 * texts (through the addon, `sha256`) and is spared its loading, ~3 ms of its start.
 */
export function createSha256(): NodeCrypto.Hash {
  nodeCrypto ??= createRequire(import.meta.url)('node:crypto') as typeof NodeCrypto;
  return nodeCrypto.createHash('sha256');
}

/** The sha256 of a text (its UTF-8) or of bytes, as hex. */
export function sha256Hex(data: string | Buffer): string {
  return native().sha256(data);
}

export function sha256(data: string | Buffer): Digest {
  return `sha256:${sha256Hex(data)}`;
}

/** `bytes` random bytes (getrandom), as hex: names that another process, or PID namespace, will not pick too. */
export function randomHex(bytes: number): string {
  return native().randomHex(bytes);
}

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function hexOf(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** Incremental sha256 with a byte count, for hashing while streaming. */
export class DigestCounter {
  private readonly hash = createSha256();
  size = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

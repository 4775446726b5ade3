// sha256 digests.
import { createHash, type Hash } from 'node:crypto';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function sha256(data: string | Buffer): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function hexOf(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** Incremental sha256 with a byte count, for hashing while streaming. */
export class DigestCounter {
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

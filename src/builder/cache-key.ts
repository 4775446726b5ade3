// Build cache keys: what makes two steps the same step.
import { hexOf, sha256, type Digest } from '../util/digest.js';

/**
 * A step's build cache key: the layer stack it starts from, and what it depends on (its
 * `material`: the instruction after expansion, the environment a RUN sees, the digests of COPY's
 * sources...). Equal keys mean the step would make the same layer (store/build-cache.ts keeps them).
 */
export function stepKey(parent: Digest | undefined, material: unknown): string {
  return hexOf(sha256(JSON.stringify({ parent: parent ?? 'scratch', material })));
}

// Chain IDs: the names of layer stacks.
import { sha256, type Digest } from '../util/digest.js';

/** ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIdOf(parent: Digest | undefined, diffId: Digest): Digest {
  return parent === undefined ? diffId : sha256(`${parent} ${diffId}`);
}

/** The chain IDs of a stack of layers, bottom first. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(chainIdOf(out.at(-1), d));
  return out;
}

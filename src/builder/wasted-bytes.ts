// The WastedBytes check: files a step of this build added that a later step deletes or overwrites.
import { RULES } from '../check/rules.js';
import type { Linter } from '../check/linter.js';
import { imageWaste } from '../store/waste.js';
import type { Store } from '../store/store.js';
import { humanSize } from '../util/units.js';
import type { Digest } from '../util/digest.js';
import type { StageState } from './stage-state.js';

/** Below this, what a later step removes is not worth a warning (a lock file, a pid file). */
const THRESHOLD = 1 << 20;

/**
 * Warns, per pair of steps, of the bytes one added and a later one deleted or overwrote: the
 * image still carries them in the first's layer. Reads the built layers only when one of them
 * deletes something (LayerMeta.removes), so that a build whose steps only add pays nothing.
 */
export async function checkWastedBytes(store: Store, imageId: Digest, state: StageState, linter: Linter): Promise<void> {
  if (!linter.enabled(RULES.WastedBytes)) return;
  const { layers } = state;
  const first = layers.findIndex((l) => state.layerSteps.has(l.chainId));
  if (first < 0 || !layers.slice(first).some((l) => (l.removes ?? 0) > 0)) return;
  const pairs = new Map<string, { from: number; by: number; bytes: number; files: number; largest: { path: string; size: number } }>();
  await imageWaste(store, { id: imageId, layers, config: state.config }, {
    from: first,
    onWaste: (from, by, path, size) => {
      const key = `${from}:${by}`;
      const pair = pairs.get(key) ?? { from, by, bytes: 0, files: 0, largest: { path, size } };
      pair.bytes += size;
      pair.files++;
      if (size > pair.largest.size) pair.largest = { path, size };
      pairs.set(key, pair);
    },
  });
  for (const p of pairs.values()) {
    const added = state.layerSteps.get(layers[p.from]!.chainId);
    const removed = state.layerSteps.get(layers[p.by]!.chainId);
    if (!added || !removed || p.bytes < THRESHOLD) continue;
    const what = p.files > 1 ? `${humanSize(p.bytes)} in ${p.files} files (the largest: ${p.largest.path}, ${humanSize(p.largest.size)})` : `${p.largest.path} (${humanSize(p.bytes)})`;
    linter.warn(RULES.WastedBytes, `${what} added at line ${added.line} ${p.files > 1 ? 'are' : 'is'} deleted or overwritten at line ${removed.line}: the image still carries ${p.files > 1 ? 'them' : 'it'}`, added);
  }
}

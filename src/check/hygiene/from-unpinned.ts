// FromUnpinned: a base image without a tag, or tagged latest.
import type { CheckInput } from '../input.js';
import { RULES } from '../rules.js';

export function fromUnpinned(input: CheckInput): void {
  const stageNames = new Set<string>();
  for (const stage of input.stages) {
    const base = input.bases[stage.index] ?? stage.from.base;
    const lower = base.toLowerCase();
    const isStage = stageNames.has(lower);
    if (stage.name) stageNames.add(stage.name);
    if (isStage || lower === 'scratch' || base === '' || base.includes('@') || base.includes('$')) continue;
    const name = base.slice(base.lastIndexOf('/') + 1);
    const colon = name.indexOf(':');
    const tag = colon < 0 ? undefined : name.slice(colon + 1);
    if (tag === undefined) input.linter.warn(RULES.FromUnpinned, `FROM ${base} has no tag: the build gets whatever "latest" is when the image is pulled`, stage.from.location);
    else if (tag === 'latest') input.linter.warn(RULES.FromUnpinned, `FROM ${base}: "latest" is whatever it is when the image is pulled`, stage.from.location);
  }
}

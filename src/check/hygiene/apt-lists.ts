// AptListsKept: apt-get install whose RUN leaves /var/lib/apt/lists in the layer.
import type { CheckInput } from '../input.js';
import { RULES } from '../rules.js';
import { runText } from './run-text.js';

const INSTALL = /\bapt(?:-get)?\s+(?:-\S+\s+)*install\b/;
const REMOVES_LISTS = /\brm\s[^;&|\n]*\/var\/lib\/apt\/lists/;

export function aptListsKept(input: CheckInput): void {
  for (const stage of input.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'RUN') continue;
      const text = runText(ins);
      if (!INSTALL.test(text) || REMOVES_LISTS.test(text)) continue;
      // a cache mount keeps the lists out of the layer
      const target = (m: (typeof ins.mounts)[number]) => m.fields.find((f) => ['target', 'dst', 'destination'].includes(f.key))?.value ?? '';
      if (ins.mounts.some((m) => /^\/var\/lib\/apt(\/lists)?\/?$/.test(target(m)))) continue;
      input.linter.warn(RULES.AptListsKept, 'apt-get install without removing /var/lib/apt/lists in the same RUN: the package lists stay in the layer', ins.location);
    }
  }
}

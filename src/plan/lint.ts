// BuildKit's build checks that warn without failing.
import type { SourceLocation } from '../errors.js';
import type { ArgValue } from './args.js';
import type { Stage } from './stages.js';

const where = (l: SourceLocation) => `${l.file}:${l.line}`;

/** BuildKit's warnings that do not stop a build: an undeclared ARG in FROM, shell-form CMD/ENTRYPOINT. */
export function lintWarnings(stages: readonly Stage[], globalArgs: readonly ArgValue[]): string[] {
  const warnings: string[] = [];
  for (const s of stages) {
    for (const m of s.from.base.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
      if (!globalArgs.some((a) => a.key === m[1])) {
        warnings.push(`UndefinedArgInFrom: FROM argument '${m[1]}' is not declared (${where(s.from.location)})`);
      }
    }
    for (const ins of s.instructions) {
      if ((ins.keyword === 'CMD' || ins.keyword === 'ENTRYPOINT') && ins.prependShell) {
        warnings.push(`JSONArgsRecommended: JSON arguments recommended for ${ins.keyword} to prevent unintended behavior related to OS signals (${where(ins.location)})`);
      }
    }
  }
  return warnings;
}

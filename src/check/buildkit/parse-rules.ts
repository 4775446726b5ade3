// The checks BuildKit makes while it reads the Dockerfile (its parse phase): empty continuation
// lines, FROM's casing and stage name, MAINTAINER, and (experimental) definition comments.
import type { Node } from '../../dockerfile/node.js';
import type { Linter } from '../linter.js';
import { RULES } from '../rules.js';

const selfConsistent = (s: string) => s === s.toLowerCase() || s === s.toUpperCase();

/** NoEmptyContinuation, one per instruction, at the line it ends on (the file's config only). */
export function emptyContinuations(nodes: readonly Node[], linter: Linter): void {
  for (const n of nodes) {
    if (n.emptyContinuation !== undefined) linter.warn(RULES.NoEmptyContinuation, 'Empty continuation line', { file: n.location.file, line: n.emptyContinuation });
  }
}

/** The parse-time checks of one instruction, with its own comments' config. */
export function parseRules(node: Node, linter: Linter): void {
  const at = linter.at(node.comments);
  const keyword = node.keyword.toLowerCase();
  if (keyword === 'from') {
    const args = node.values;
    if (args.length === 3 && args[2] !== args[2]!.toLowerCase()) at.warn(RULES.StageNameCasing, `Stage name '${args[2]}' should be lowercase`, node.location);
    if (args.length >= 3 && selfConsistent(node.keyword)) {
      const lower = node.keyword === node.keyword.toLowerCase();
      if ((lower && args[1] !== args[1]!.toLowerCase()) || (!lower && args[1] !== args[1]!.toUpperCase())) {
        at.warn(RULES.FromAsCasing, `'${args[1]}' and '${node.keyword}' keywords' casing do not match`, node.location);
      }
    }
  }
  if (keyword === 'maintainer') at.warn(RULES.MaintainerDeprecated, 'Maintainer instruction is deprecated in favor of using label', node.location);
}

/** InvalidDefinitionDescription (experimental): a comment over `FROM ... AS name` or ARG should start with the name. */
export function definitionDescription(node: Node, linter: Linter, keys: readonly string[]): void {
  const at = linter.at(node.comments);
  const last = node.comments.at(-1);
  if (last === undefined || keys.length === 0) return;
  if (keys.includes(last.split(' ')[0]!)) return;
  const what = node.keyword.toLowerCase() === 'from' ? 'FROM' : 'ARG';
  const key = keys.length === 1 ? keys[0]! : '<arg_key>';
  at.warn(RULES.InvalidDefinitionDescription, `Comment for ${what} should follow the format: \`# ${key} <description>\``, node.location);
}

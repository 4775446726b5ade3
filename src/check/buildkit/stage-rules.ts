// The checks over the whole Dockerfile once read: stage names, and instruction casing.
import type { Node } from '../../dockerfile/node.js';
import { goQuote } from '../../util/go-quote.js';
import type { Linter } from '../linter.js';
import { RULES } from '../rules.js';

const RESERVED = new Set(['context', 'scratch']);

/** ReservedStageName and DuplicateStageName, FROM by FROM (names compared lower-cased, as BuildKit keeps them). */
export function stageNames(froms: readonly Node[], linter: Linter): void {
  const seen = new Set<string>();
  for (const from of froms) {
    if (from.values.length !== 3) continue;
    const name = from.values[2]!.toLowerCase();
    if (RESERVED.has(name)) linter.warn(RULES.ReservedStageName, `Stage name should not use the same name as reserved stage ${goQuote(name)}`, from.location);
    if (seen.has(name)) linter.warn(RULES.DuplicateStageName, `Duplicate stage name ${goQuote(name)}, stage names should be unique`, from.location);
    seen.add(name);
  }
}

/**
 * ConsistentInstructionCasing: the keywords of the stages (ARGs before the first FROM left out)
 * counted upper or lower (mixed ones not counted); a tie is upper. Every keyword not in the
 * majority's case warns, mixed ones always.
 */
export function instructionCasing(stageNodes: readonly Node[], linter: Linter): void {
  let lower = 0;
  let upper = 0;
  for (const n of stageNodes) {
    if (n.keyword === n.keyword.toLowerCase()) lower++;
    else if (n.keyword === n.keyword.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  for (const n of stageNodes) {
    const want = majorityLower ? n.keyword.toLowerCase() : n.keyword.toUpperCase();
    if (n.keyword !== want) {
      linter.warn(RULES.ConsistentInstructionCasing, `Command '${n.keyword}' should match the case of the command majority (${majorityLower ? 'lowercase' : 'uppercase'})`, n.location);
    }
  }
}

// The checks of each FROM against the global ARGs: InvalidDefaultArgInFrom, UndefinedArgInFrom,
// RedundantTargetPlatform, FromPlatformFlagConstDisallowed.
import type { ArgInstruction, FromInstruction } from '../../dockerfile/instructions.js';
import type { Node } from '../../dockerfile/node.js';
import { goQuote } from '../../util/go-quote.js';
import { expandRaw, expandWord } from '../../dockerfile/shell-words.js';
import { parsePlatform, type Platform } from '../../image/platform.js';
import { parseReference } from '../../image/reference.js';
import { platformArgs, type ArgValue } from '../../plan/args.js';
import { nearest } from '../../util/suggest.js';
import type { Linter } from '../linter.js';
import { RULES } from '../rules.js';

/**
 * An expansion that records the names it looked up, found or not (BuildKit's matched/unmatched);
 * `raw`: quotes are ordinary characters (a heredoc's content).
 */
export function tracked(word: string, lookup: (name: string) => string | undefined, escape: string, raw = false): { value?: string; matched: string[]; unmatched: string[] } {
  const matched: string[] = [];
  const unmatched: string[] = [];
  const env = (name: string) => {
    const v = lookup(name);
    (v === undefined ? unmatched : matched).push(name);
    return v;
  };
  try {
    return { value: raw ? expandRaw(word, env, escape) : expandWord(word, env, escape), matched, unmatched };
  } catch {
    return { matched, unmatched };
  }
}

/** Whether a name is one distribution/reference accepts (ParseNormalizedNamed). */
function validReference(name: string): boolean {
  if (/^[a-f0-9]{64}$/.test(name)) return false;
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}

export interface FromCheck {
  node: Node;
  from: FromInstruction;
  /** The stage's name (lower-cased), or ''. */
  name: string;
}

/**
 * InvalidDefaultArgInFrom (the file's config): each base expanded with the global ARGs' defaults
 * alone, as if no --build-arg were given, must be a valid image name.
 */
export function defaultArgsInFrom(froms: readonly FromCheck[], globalArgs: readonly ArgInstruction[], buildArgs: Record<string, string | undefined>, target: Platform | undefined, escape: string, linter: Linter): void {
  const env = new Map<string, string>();
  for (const a of platformArgs(target)) env.set(a.key, buildArgs[a.key] ?? a.value ?? '');
  try {
    for (const ins of globalArgs) for (const a of ins.args) if (a.value !== undefined) env.set(a.key, expandWord(a.value, (n) => env.get(n), escape));
  } catch {
    return;
  }
  for (const f of froms) {
    let base: string;
    try {
      base = expandWord(f.from.base, (n) => env.get(n), escape);
    } catch {
      return;
    }
    if (!validReference(base)) linter.warn(RULES.InvalidDefaultArgInFrom, `Default value for ARG ${f.from.base} results in empty or invalid base image name`, f.from.location);
  }
}

/**
 * UndefinedArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed, with the FROM's
 * own comments: every variable the base (and --platform) looks up must be a declared global ARG
 * or an automatic platform ARG, `${X:-default}` forms included.
 */
export function fromArgs(f: FromCheck, globalArgs: readonly ArgInstruction[], values: readonly ArgValue[], escape: string, linter: Linter): void {
  const at = linter.at(f.node.comments);
  const declared = new Set([...globalArgs.flatMap((i) => i.args.map((a) => a.key)), ...values.filter((v) => v.value !== undefined).map((v) => v.key)]);
  const lookup = (n: string) => values.find((v) => v.key === n)?.value;
  const undeclared = (unmatched: string[]) => {
    for (const name of new Set(unmatched)) {
      if (declared.has(name)) continue;
      const hint = nearest(name, declared, true);
      at.warn(RULES.UndefinedArgInFrom, `FROM argument '${name}' is not declared${hint ? ` (did you mean ${hint}?)` : ''}`, f.from.location);
    }
  };
  undeclared(tracked(f.from.base, lookup, escape).unmatched);
  const platform = f.from.platform;
  if (platform === undefined) return;
  const p = tracked(platform, lookup, escape);
  undeclared(p.unmatched);
  if (p.matched.length === 1 && p.matched[0] === 'TARGETPLATFORM' && p.unmatched.length === 0 && p.value === lookup('TARGETPLATFORM')) {
    at.warn(RULES.RedundantTargetPlatform, `Setting platform to predefined ${platform} in FROM is redundant as this is the default behavior`, f.from.location);
  }
  if (p.matched.length === 0 && p.unmatched.length === 0 && p.value !== undefined) {
    let parsed: Platform;
    try {
      parsed = parsePlatform(p.value);
    } catch {
      return;
    }
    if (!f.name.includes(parsed.os) && !f.name.includes(parsed.architecture)) {
      at.warn(RULES.FromPlatformFlagConstDisallowed, `FROM --platform flag should not use constant value ${goQuote(p.value)}`, f.from.location);
    }
  }
}

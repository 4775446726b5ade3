// An instruction's `--flag=value` flags, as BuildKit's BFlags parses them.
import { nearest } from '../util/suggest.js';
import { DockerfileError, type SourceLocation } from '../errors.js';

export type FlagKind = 'bool' | 'string' | 'strings';

/** Parsed `--name=value` flags of one instruction: strings, booleans and repeatable lists. */
export interface FlagValues {
  string(name: string): string | undefined;
  bool(name: string): boolean;
  strings(name: string): string[];
  used(name: string): boolean;
}

/**
 * Parses an instruction's raw flags against the flags it accepts, with BuildKit's errors:
 * unknown flag, duplicate flag, missing value, bad boolean.
 */
export function parseFlags(keyword: string, raw: readonly string[], spec: Record<string, FlagKind>, location: SourceLocation): FlagValues {
  const values = new Map<string, string[]>();
  const fail = (msg: string): never => {
    throw new DockerfileError(msg, { location });
  };
  for (const a of raw) {
    if (a === '--') break;
    if (!a.startsWith('--')) fail(`arg should start with -- : ${a}`);
    const eq = a.indexOf('=');
    const name = (eq < 0 ? a : a.slice(0, eq)).slice(2);
    const value = eq < 0 ? undefined : a.slice(eq + 1);
    const kind = spec[name];
    if (!kind) {
      const hint = nearest(name, Object.keys(spec), true);
      fail(`unknown flag: --${name} (${hint ? `did you mean ${hint}?` : `${keyword} accepts ${Object.keys(spec).map((k) => `--${k}`).join(', ') || 'no flags'}`})`);
    }
    if (values.has(name) && kind !== 'strings') fail(`duplicate flag specified: --${name}`);
    if (kind === 'bool') {
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') fail(`expecting boolean value for flag ${name}, not: ${value}`);
      values.set(name, [v]);
    } else {
      if (value === undefined) fail(`missing a value on flag: --${name}`);
      values.set(name, [...(values.get(name) ?? []), value!]);
    }
  }
  return {
    string: (n) => values.get(n)?.[0],
    bool: (n) => values.get(n)?.[0] === 'true',
    strings: (n) => values.get(n) ?? [],
    used: (n) => values.has(n),
  };
}

// `.dockerignore` with Docker's matching rules.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * `.dockerignore` with Docker's semantics: patterns are cleaned paths relative to the context
 * (leading `/` and `./` dropped), `*`, `?`, `[...]` and `\` as in Go's filepath.Match, `**` for any
 * number of directories, `!` for exceptions; the last matching pattern decides; a path is also
 * excluded when one of its parent directories is.
 */
interface Pattern {
  regex: RegExp;
  exclusion: boolean;
  /** The pattern's directory depth, to know whether an exception can reach inside a directory. */
  source: string;
}

export function globToRegex(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      i++;
      re += pattern[i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

function cleanPattern(p: string): string {
  let s = path.posix.normalize(p.trim());
  while (s.startsWith('/')) s = s.slice(1);
  if (s.startsWith('./')) s = s.slice(2);
  if (s === '.' ) s = '';
  return s.replace(/\/+$/, '');
}

/** A COPY source as Go's filepath.Clean writes it (`./a/../b/` is `b`), as BuildKit names it in checks. */
export function cleanSource(src: string): string {
  const clean = path.posix.normalize(src);
  return clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
}

export class IgnoreMatcher {
  private readonly patterns: Pattern[];

  constructor(lines: readonly string[]) {
    this.patterns = [];
    for (const raw of lines) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const exclusion = !line.startsWith('!');
      const body = cleanPattern(exclusion ? line : line.slice(1));
      if (body === '') continue;
      this.patterns.push({ regex: globToRegex(body), exclusion, source: body });
    }
  }

  static fromContext(contextDir: string, dockerfile?: string): IgnoreMatcher {
    const candidates = [dockerfile ? `${dockerfile}.dockerignore` : undefined, path.join(contextDir, '.dockerignore')];
    for (const f of candidates) {
      if (f && existsSync(f)) return new IgnoreMatcher(readFileSync(f, 'utf8').split(/\r?\n/));
    }
    return new IgnoreMatcher([]);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether a context-relative path (no leading slash) is excluded. */
  excludes(rel: string): boolean {
    if (this.patterns.length === 0 || rel === '') return false;
    const parts = rel.split('/');
    let excluded = false;
    for (const p of this.patterns) {
      if (p.exclusion === excluded) continue; // cannot change the outcome
      let hit = p.regex.test(rel);
      for (let n = 1; !hit && n < parts.length; n++) hit = p.regex.test(parts.slice(0, n).join('/'));
      if (hit) excluded = p.exclusion;
    }
    return excluded;
  }

  /**
   * BuildKit's CopyIgnoredFile test of a COPY or ADD source as written: whether the patterns leave
   * it out; undefined where the check does not apply (no patterns, or an exception `!pattern`).
   * The context itself (`.`) is left out only by `*`, `**` or `**\/*`.
   */
  ignoresSource(src: string): boolean | undefined {
    if (this.patterns.length === 0 || this.patterns.some((p) => !p.exclusion)) return undefined;
    const clean = cleanSource(src);
    if (clean === '.' || clean === '/') return this.patterns.some((p) => ['*', '**', '**/*'].includes(p.source));
    return this.excludes(clean);
  }

  /**
   * Whether an excluded directory may still hold included paths: only when an exception pattern is
   * written below it (`!dir/keep`), as Docker decides whether to walk into an excluded directory.
   * `!**\/x` or `!*\/x` do not reach into an excluded directory.
   */
  mayIncludeUnder(dirRel: string): boolean {
    return this.patterns.some((p) => !p.exclusion && p.source.startsWith(`${dirRel}/`));
  }
}

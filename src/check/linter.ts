// Which checks run, and the warnings they give: BuildKit's linter, with its `# check=` directive.
import { DockerfileError, type SourceLocation } from '../errors.js';
import type { Rule } from './rules.js';

/** `# check=skip=A,B;error=true;experimental=all` (or the BUILDKIT_DOCKERFILE_CHECK build arg). */
export interface CheckConfig {
  skipAll?: boolean;
  skip?: string[];
  experimentalAll?: boolean;
  experimental?: string[];
  /** Fail the build when a check warns. */
  error?: boolean;
}

export interface CheckWarning {
  rule: Rule;
  /** The rule's message for this case: `Stage name 'Build' should be lowercase`. */
  message: string;
  /** Where: the instruction's lines (none for a warning about the whole build). */
  location?: SourceLocation;
}

const list = (v: string) => v.split(',').map((s) => s.trim());

/** Parses a check option string as BuildKit's ParseLintOptions does; throws on what it refuses. */
export function parseCheckOptions(text: string): CheckConfig {
  const config: CheckConfig = {};
  const trimmed = text.trim();
  if (trimmed === '') return config;
  for (const part of trimmed.split(';').slice(0, 3)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option "${part}"`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (value === 'all') config.skipAll = true;
      else config.skip = list(value);
    } else if (key === 'experimental') {
      if (value === 'all') config.experimentalAll = true;
      else config.experimental = list(value);
    } else if (key === 'error') {
      const b = parseGoBool(value);
      if (b === undefined) throw new Error(`failed to parse check option "${part}": invalid syntax`);
      config.error = b;
    } else throw new Error(`invalid check option "${key}"`);
  }
  return config;
}

/** Go's strconv.ParseBool. */
function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/**
 * A config with what an instruction's own `# check=` comment adds (BuildKit's
 * WithMergedConfigFromComments): its skips and experimental rules join the file's; `error` stays
 * the file's. A comment that does not parse is ignored.
 */
export function withComment(config: CheckConfig, comments: readonly string[]): CheckConfig {
  for (const comment of comments) {
    const m = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(`${comment}`);
    if (!m || m[1]!.toLowerCase() !== 'check') continue;
    let own: CheckConfig;
    try {
      own = parseCheckOptions(m[2]!.split(' ')[0]!);
    } catch {
      return config;
    }
    return {
      ...config,
      skipAll: config.skipAll || own.skipAll,
      skip: [...(config.skip ?? []), ...(own.skip ?? [])],
      experimentalAll: config.experimentalAll || own.experimentalAll,
      experimental: [...(config.experimental ?? []), ...(own.experimental ?? [])],
    };
  }
  return config;
}

/** Collects the warnings of the rules the config lets run. */
export class Linter {
  private readonly skip: Set<string>;
  private readonly experimental: Set<string>;

  constructor(
    readonly config: CheckConfig = {},
    /** Shared by a linter and the views of it that an instruction's comment makes (`at`). */
    readonly warnings: CheckWarning[] = [],
  ) {
    this.skip = new Set(config.skip ?? []);
    this.experimental = new Set(config.experimental ?? []);
  }

  /** This linter as the instruction with these comments above it sees it. */
  at(comments: readonly string[]): Linter {
    return comments.length === 0 ? this : new Linter(withComment(this.config, comments), this.warnings);
  }

  enabled(rule: Rule): boolean {
    if (rule.experimental) return this.config.experimentalAll === true || this.experimental.has(rule.name);
    return !this.config.skipAll && !this.skip.has(rule.name);
  }

  warn(rule: Rule, message: string, location?: SourceLocation): void {
    if (this.enabled(rule)) this.warnings.push({ rule, message, location });
  }

  /** With `error=true` and a warning given: the error that fails the build (BuildKit's words; rules sorted). */
  failure(): DockerfileError | undefined {
    if (!this.config.error || this.warnings.length === 0) return undefined;
    const names = [...new Set(this.warnings.map((w) => w.rule.name))].sort();
    return new DockerfileError(`lint violation found for rules: ${names.join(', ')}`);
  }
}

/**
 * Word and variable expansion as BuildKit's Dockerfile frontend does it (not a full shell):
 * quotes ('…' literal, "…" with $ expansion), the escape character, `$name`, `${name}`,
 * `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`, `${name:?msg}`, `${name?msg}`.
 * Positional and special parameters ($1, $@, $#, ...) are always unset.
 */
export type Env = (name: string) => string | undefined;

export class ShellWordError extends Error {}

const SPECIAL = new Set(['@', '*', '#', '?', '-', '$', '!']);
const isNameChar = (c: string) => /[A-Za-z0-9_]/.test(c);
const isDigit = (c: string) => c >= '0' && c <= '9';
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

class Lexer {
  private pos: number;
  /** Words finished so far (only when splitting). */
  private words: string[] = [];
  private current = '';
  /** Whether the current word exists even if empty (it had quotes). */
  private started = false;

  constructor(
    private readonly chars: readonly string[],
    private readonly env: Env,
    private readonly escape: string,
    private readonly split: boolean,
    start = 0,
    /** Quotes are ordinary characters (BuildKit's SkipProcessQuotes, for heredoc contents). */
    private readonly skipQuotes = false,
    /** Quotes work but stay in the result, and unset variables stay as written (BuildKit's RawQuotes and SkipUnsetEnv, for step names). */
    private readonly display = false,
  ) {
    this.pos = start;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  run(): string[] {
    this.processUntil(undefined);
    this.endWord();
    return this.words;
  }

  private endWord(): void {
    if (this.current !== '' || this.started || !this.split) this.words.push(this.current);
    this.current = '';
    this.started = false;
  }

  private append(s: string): void {
    this.current += s;
  }

  /** Processes top-level text until `stop` (consumed) or the end; returns whether `stop` was seen. */
  private processUntil(stop: string | undefined): boolean {
    while (this.pos < this.chars.length) {
      const c = this.next()!;
      if (stop !== undefined && c === stop) return true;
      if (c === this.escape) {
        const n = this.next();
        if (n !== undefined) this.append(n);
        this.started = true;
      } else if (this.skipQuotes && (c === "'" || c === '"')) {
        this.append(c);
      } else if (c === "'") {
        this.append(this.singleQuoted());
        this.started = true;
      } else if (c === '"') {
        this.append(this.doubleQuoted());
        this.started = true;
      } else if (c === '$') {
        this.appendExpansion(this.dollar());
      } else if (this.split && stop === undefined && isSpace(c)) {
        if (this.current !== '' || this.started) this.endWord();
      } else {
        this.append(c);
      }
    }
    return false;
  }

  /** An unquoted expansion's value is split into words too (when splitting). */
  private appendExpansion(value: string): void {
    if (!this.split) {
      this.append(value);
      return;
    }
    const parts = value.split(/[ \t\r\n]+/);
    parts.forEach((part, i) => {
      if (i > 0 && (this.current !== '' || this.started)) this.endWord();
      this.append(part);
    });
  }

  private singleQuoted(): string {
    let out = this.display ? "'" : '';
    for (;;) {
      const c = this.next();
      if (c === undefined) throw new ShellWordError('unexpected end of statement while looking for matching single-quote');
      if (c === "'") return this.display ? `${out}'` : out;
      out += c;
    }
  }

  private doubleQuoted(): string {
    let out = this.display ? '"' : '';
    for (;;) {
      const c = this.next();
      if (c === undefined) throw new ShellWordError('unexpected end of statement while looking for matching double-quote');
      if (c === '"') return this.display ? `${out}"` : out;
      if (c === this.escape) {
        const n = this.peek();
        if (n === '"' || n === '$' || n === this.escape) {
          out += n;
          this.pos++;
        } else out += c;
      } else if (c === '$') {
        out += this.dollar();
      } else out += c;
    }
  }

  private name(): string {
    const c = this.peek();
    if (c === undefined) return '';
    if (isDigit(c)) {
      let n = '';
      while (this.peek() !== undefined && isDigit(this.peek()!)) n += this.next();
      return n;
    }
    if (SPECIAL.has(c)) {
      this.pos++;
      return c;
    }
    let n = '';
    while (this.peek() !== undefined && isNameChar(this.peek()!)) n += this.next();
    return n;
  }

  private lookup(name: string): string | undefined {
    if (isDigit(name[0] ?? '') || SPECIAL.has(name)) return undefined;
    return this.env(name);
  }

  /** After a `$`: the expansion's value. */
  private dollar(): string {
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.lookup(name) ?? (this.display ? `$${name}` : '');
    }
    this.pos++; // {
    const name = this.name();
    if (name === '') throw new ShellWordError('bad substitution: missing variable name in ${}');
    const c = this.next();
    if (c === '}') return this.lookup(name) ?? (this.display ? `\${${name}}` : '');
    if (c === undefined) throw new ShellWordError(`missing '}' in \${${name}`);
    let colon = false;
    let op = c;
    if (c === ':') {
      colon = true;
      op = this.next() ?? '';
    }
    if (op !== '-' && op !== '+' && op !== '?') throw new ShellWordError(`unsupported modifier (${colon ? ':' : ''}${op}) in substitution of ${name}`);
    const word = this.nested();
    const value = this.lookup(name);
    const set = colon ? value !== undefined && value !== '' : value !== undefined;
    if (op === '-') return set ? value! : word;
    if (op === '+') return set ? word : '';
    if (!set) throw new ShellWordError(`${name}: ${word || 'is not allowed to be unset'}`);
    return value!;
  }

  /** The word inside `${name:-word}`, up to the matching `}`. */
  private nested(): string {
    const inner = new Lexer(this.chars, this.env, this.escape, false, this.pos);
    if (!inner.processUntil('}')) throw new ShellWordError("missing '}' in substitution");
    this.pos = inner.pos;
    return inner.current;
  }
}

/** Expands one word (quotes removed, no splitting): ENV values, WORKDIR, USER, ... */
export function expandWord(word: string, env: Env, escape = '\\'): string {
  return new Lexer([...word], env, escape, false).run()[0] ?? '';
}

/** Expands variables in text whose quotes are ordinary characters: heredoc contents. */
export function expandRaw(text: string, env: Env, escape = '\\'): string {
  return new Lexer([...text], env, escape, false, 0, true).run()[0] ?? '';
}

/**
 * A command as a step's name shows it (BuildKit's RawQuotes + SkipUnsetEnv): variables that are
 * set expanded, unset ones and quotes as written. Text it cannot expand is shown unchanged.
 */
export function expandForDisplay(text: string, env: Env, escape = '\\'): string {
  try {
    return new Lexer([...text], env, escape, false, 0, false, true).run()[0] ?? '';
  } catch {
    return text;
  }
}

/** Expands and splits on unquoted whitespace: the words of a shell-form argument list. */
export function expandWords(text: string, env: Env, escape = '\\'): string[] {
  return new Lexer([...text], env, escape, true).run();
}

/** An Env over a `KEY=value` list (later entries win). */
export function envFromList(list: readonly string[]): Env {
  const map = new Map<string, string>();
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq < 0) map.set(kv, '');
    else map.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return (name) => map.get(name);
}

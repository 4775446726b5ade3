// How each keyword's arguments are split (BuildKit's line_parsers.go).
import { DockerfileError } from '../errors.js';

/**
 * How each keyword's arguments are split, as BuildKit's parser does (frontend/dockerfile/parser/
 * line_parsers.go): whitespace-separated strings, one string, JSON-or-string, key=value pairs.
 * Quotes and escapes stay in the values; expansion happens later, per instruction.
 */
export interface Parsed {
  values: string[];
  json: boolean;
}

const WHITESPACE = /[\t\v\f\r ]+/;
const isSpace = (c: string) => /\s/u.test(c);
const NONE: Parsed = { values: [], json: false };

export class NotStringArrayError extends DockerfileError {
  constructor() {
    super('when using JSON array syntax, arrays must be comprised of strings only');
  }
}

/** JSON form: a JSON array of strings. `undefined` means "not JSON, use the other form". */
function parseJson(rest: string): string[] | undefined {
  const trimmed = rest.trimStart();
  if (!trimmed.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v) => typeof v === 'string')) throw new NotStringArrayError();
  return value as string[];
}

export function maybeJson(rest: string): Parsed {
  if (rest === '') return NONE;
  const json = parseJson(rest);
  return json ? { values: json, json: true } : { values: [rest], json: false };
}

export function maybeJsonToList(rest: string): Parsed {
  const json = parseJson(rest);
  return json ? { values: json, json: true } : whitespaceDelimited(rest);
}

export function whitespaceDelimited(rest: string): Parsed {
  return rest === '' ? NONE : { values: rest.split(WHITESPACE), json: false };
}

export function singleString(rest: string): Parsed {
  return rest === '' ? NONE : { values: [rest], json: false };
}

/**
 * Splits on unquoted whitespace, keeping quotes and escapes in the words (BuildKit's parseWords):
 * for ENV, LABEL and ARG, whose values are expanded later.
 */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const chars = [...rest];
  let word = '';
  let blankOk = false;
  let quote = '';
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  for (let i = 0; i <= chars.length; i++) {
    const end = i === chars.length;
    let ch = chars[i] ?? '';
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (end) {
      if (blankOk || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (i + 1 === chars.length) continue; // an escape at the very end is dropped
        word += ch;
        ch = chars[++i]!;
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      ch = chars[++i]!;
    }
    word += ch;
  }
  return words;
}

/** ENV and LABEL: `key=value ...` (sep "=") or the legacy `key value with spaces` (sep ""). */
export function nameValues(rest: string, keyword: string, escape: string): Parsed {
  const words = parseWords(rest, escape);
  if (words.length === 0) return NONE;
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)[\t\v\f\r ]+([\s\S]*)$/.exec(rest);
    if (!m) throw new DockerfileError(`${keyword} must have two arguments`);
    return { values: [m[1]!, m[2]!, ''], json: false };
  }
  const values: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) throw new DockerfileError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    values.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return { values, json: false };
}

/** HEALTHCHECK: the type word (CMD, NONE, ...), then the command in JSON or shell form. */
export function healthConfig(rest: string): Parsed {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
  if (!m) return NONE;
  const cmd = maybeJson(m[2]!);
  return { values: [m[1]!, ...cmd.values], json: cmd.json };
}

/**
 * Leading `--name=value` flags (quotes and escapes removed), up to the first word that is not one
 * or a lone `--`. Returns the flags and the rest of the line.
 */
export function extractFlags(line: string, escape: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let word = '';
  let blankOk = false;
  let quote = '';
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  for (let pos = 0; pos <= line.length; pos++) {
    const end = pos === line.length;
    let ch = line[pos] ?? '';
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || line[pos + 1] !== '-') return { flags, rest: line.slice(pos) };
      phase = 'word';
    }
    if (end) {
      if (word !== '--' && (blankOk || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { flags, rest: line.slice(pos) };
        if (blankOk || word.length > 0) flags.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
        continue;
      }
      if (ch === escape) {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === escape) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return { flags, rest: '' };
}

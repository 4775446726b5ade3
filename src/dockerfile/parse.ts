// Dockerfile text to lines: directives, continuations, comments, flags, heredocs (BuildKit's parser).
import { DockerfileParser } from 'dockerfile-ast';
import { DockerfileError, type SourceLocation } from '../errors.js';
import {
  extractFlags,
  healthConfig,
  maybeJson,
  maybeJsonToList,
  nameValues,
  parseWords,
  singleString,
  whitespaceDelimited,
  type Parsed,
} from './line-parsers.js';
import type { Heredoc, Node } from './node.js';

export interface ParsedDockerfile {
  file: string;
  escape: string;
  nodes: Node[];
  /** The `# check=` parser directive's value (up to its first space), when the file has one. */
  checkDirective?: string;
  /** The text as read, for the lines that build checks quote. */
  text: string;
}

type LineParser = (rest: string, escape: string, keyword: string) => Parsed;

const DISPATCH: Record<string, LineParser> = {
  add: maybeJsonToList,
  arg: (rest, escape) => ({ values: parseWords(rest, escape), json: false }),
  cmd: maybeJson,
  copy: maybeJsonToList,
  entrypoint: maybeJson,
  env: (rest, escape) => nameValues(rest, 'ENV', escape),
  expose: whitespaceDelimited,
  from: whitespaceDelimited,
  healthcheck: healthConfig,
  label: (rest, escape) => nameValues(rest, 'LABEL', escape),
  maintainer: singleString,
  run: maybeJson,
  shell: maybeJson,
  stopsignal: singleString,
  user: singleString,
  volume: maybeJsonToList,
  workdir: singleString,
};

const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);
const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;

/** Removes shell quoting from a heredoc delimiter word; counts the quote characters it removed. */
function unquote(word: string): { text: string; removed: number } {
  let text = '';
  let removed = 0;
  let quote = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (quote) {
      if (c === quote) {
        quote = '';
        removed++;
      } else if (c === '\\' && quote === '"' && i + 1 < word.length) text += word[++i];
      else text += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      removed++;
    } else if (c === '\\' && i + 1 < word.length) text += word[++i];
    else text += c;
  }
  return { text, removed };
}

/** The heredocs a line opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`), in order. */
export function heredocsInLine(line: string): Omit<Heredoc, 'content'>[] {
  const docs: Omit<Heredoc, 'content'>[] = [];
  for (const word of parseWords(line, '\\')) {
    const m = HEREDOC_WORD.exec(word);
    if (!m || m[3] === '') continue;
    const { text, removed } = unquote(m[3]!);
    if (text === '' || /\s/.test(text)) continue;
    docs.push({ name: text, fd: Number(m[1] || 0), chomp: m[2] === '-', expand: removed === 0 });
  }
  return docs;
}

function newNode(line: string, escape: string, location: SourceLocation): Node {
  const trimmed = line.trim();
  const m = /^(\S+)(?:[\t\v\f\r ]+([\s\S]*))?$/.exec(trimmed);
  const keyword = m?.[1] ?? trimmed;
  const { flags, rest } = m?.[2] !== undefined ? extractFlags(m[2], escape) : { flags: [], rest: '' };
  const args = rest.trim();
  const lower = keyword.toLowerCase();
  const base = { keyword, flags, heredocs: [], original: line, location, comments: [] as string[] };
  if (lower === 'onbuild') {
    if (args === '') return { ...base, values: [], json: false };
    const sub = newNode(args, escape, location);
    return { ...base, values: [], json: false, sub };
  }
  const parser = DISPATCH[lower];
  if (!parser) return { ...base, values: [], json: false }; // unknown: reported by the instruction layer
  try {
    const parsed = parser(args, escape, keyword.toUpperCase());
    return { ...base, values: parsed.values, json: parsed.json };
  } catch (err) {
    if (err instanceof DockerfileError) throw new DockerfileError(err.message, { location, cause: err });
    throw err;
  }
}

function canContainHeredoc(node: Node): boolean {
  const target = node.keyword.toLowerCase() === 'onbuild' && node.sub ? node.sub : node;
  return HEREDOC_KEYWORDS.has(target.keyword.toLowerCase()) && !target.json;
}

/**
 * The leading comment and blank lines, where parser directives can be: all dockerfile-ast needs to
 * see (it parses the whole text into its own AST otherwise, the slowest part of parsing).
 */
function directiveHeader(text: string): string {
  const m = /^(?:[ \t\r]*(?:#[^\n]*)?(?:\n|$))*/.exec(text.replace(/^\uFEFF/, ''));
  return m ? m[0] : '';
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const DIRECTIVE_NAMES = new Set(['syntax', 'escape', 'check']);

/**
 * The parser directives at the top (BuildKit's: after a `#!` line, consecutive `# name=value`
 * lines of known names; the first other line ends them). Returns them by lower-cased name, and
 * how many lines they take. A second `check` is an error, as in BuildKit.
 */
function topDirectives(lines: readonly string[], file: string): { values: Map<string, string>; end: number } {
  const values = new Map<string, string>();
  let i = lines[0]?.startsWith('#!') ? 1 : 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.replace(/\r$/, ''));
    const name = m?.[1]!.toLowerCase();
    if (!m || !DIRECTIVE_NAMES.has(name!)) break;
    if (name === 'check' && values.has('check')) throw new DockerfileError('only one check parser directive can be used', { location: { file, line: i + 1 } });
    values.set(name!, m[2]!);
  }
  return { values, end: i };
}

/**
 * Parses Dockerfile text into nodes with BuildKit's rules (frontend/dockerfile/parser/parser.go):
 * comments, the escape directive (read by dockerfile-ast), line continuations (an unescaped escape
 * at the end of a line; comment and empty lines inside a continuation are skipped, the latter with a
 * warning), keyword flags, each keyword's argument splitting, and heredocs.
 */
export function parseDockerfile(text: string, file: string): ParsedDockerfile {
  const escape = DockerfileParser.parse(directiveHeader(text)).getEscapeCharacter();
  const e = escape === '`' ? '`' : '\\\\';
  const continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  const trimContinuation = (l: string): { line: string; end: boolean } =>
    continuation.test(l) ? { line: l.replace(continuation, '$1'), end: false } : { line: l, end: true };
  const isComment = (l: string) => l.trimStart().startsWith('#');

  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const directives = topDirectives(lines, file);
  const nodes: Node[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const startLine = i + 1;
    const untrimmed = lines[i++]!.replace(/\r$/, '');
    const raw = untrimmed.trimStart();
    if (isComment(raw)) {
      // BuildKit keeps line[1:] of the line as it is, trimmed; a bare `#` starts the comments afresh
      const comment = untrimmed.slice(1).trim();
      if (i <= directives.end) continue;
      if (comment === '') comments = [];
      else comments.push(comment);
      continue;
    }
    const first = trimContinuation(raw);
    if (first.end && first.line.length === 0) continue;
    let line = first.line;
    let end = first.end;
    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const next = lines[i++]!.replace(/\r$/, '');
      if (isComment(next)) continue;
      if (next.trimStart() === '') {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(next);
      line += t.line;
      end = t.end;
    }
    const location = { file, line: startLine, endLine: i };
    const node = newNode(line, escape, location);
    node.comments = comments;
    comments = [];
    if (emptyContinuation) node.emptyContinuation = i;
    if (canContainHeredoc(node) && line.includes('<<')) {
      for (const doc of heredocsInLine(line)) {
        let content = '';
        let terminated = false;
        while (i < lines.length) {
          const body = lines[i++]!;
          let candidate = body.replace(/\r$/, '');
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          content += `${body}\n`;
        }
        if (!terminated) throw new DockerfileError('unterminated heredoc', { location: { file, line: startLine, endLine: i } });
        node.heredocs.push({ ...doc, content });
      }
      node.location = { file, line: startLine, endLine: i };
    }
    nodes.push(node);
  }
  if (nodes.length === 0) throw new DockerfileError('file with no instructions', { location: { file, line: Math.max(1, lines.length) } });
  const check = directives.values.get('check');
  return { file, escape, nodes, text, ...(check !== undefined ? { checkDirective: check.split(' ')[0] } : {}) };
}

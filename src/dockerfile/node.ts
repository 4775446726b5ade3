// A parsed Dockerfile line (BuildKit's parser.Node), and its dump for the parser corpus.
import type { SourceLocation } from '../errors.js';

/** A heredoc attached to RUN, COPY or ADD (`<<EOF ... EOF`). */
export interface Heredoc {
  name: string;
  /** File descriptor number written before `<<` (`3<<EOF`), 0 when absent. */
  fd: number;
  /** Whether variables are expanded in the content (the delimiter was not quoted). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the content and the terminator. */
  chomp: boolean;
  content: string;
}

/**
 * An instruction as the Dockerfile parser sees it (BuildKit's parser.Node): the keyword, its
 * `--flags` (raw, quotes removed), and the arguments as the keyword's line parser splits them.
 */
export interface Node {
  /** The keyword as written (`run`, `RUN`, ...). */
  keyword: string;
  flags: string[];
  /** Argument values: words, JSON elements, or `key value sep` triples for ENV and LABEL. */
  values: string[];
  /** The arguments were written in JSON (exec) form. */
  json: boolean;
  /** The instruction an ONBUILD wraps. */
  sub?: Node;
  heredocs: Heredoc[];
  /** The whole instruction line, continuations joined. */
  original: string;
  location: SourceLocation;
  /**
   * The comments just above it (BuildKit's PrevComment: a bare `#` line starts them afresh, a
   * blank line does not), each without its `#`: where `# check=` may speak for this instruction.
   */
  comments: string[];
  /** When a continuation of it was an empty line: the line it ends on (where BuildKit's NoEmptyContinuation points). */
  emptyContinuation?: number;
}

/** Go's strconv.Quote, which BuildKit's AST dumps use. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The node as BuildKit's `Node.Dump()` prints it: `(copy ["--from=a"] "x" "/y")`. */
export function dumpNode(node: Node): string {
  let s = node.keyword.toLowerCase();
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  if (node.sub) s += ` (${dumpNode(node.sub)})`;
  for (const v of node.values) s += ` ${goQuote(v)}`;
  return s.trim();
}

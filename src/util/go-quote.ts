// Go's %q quoting, for messages in BuildKit's words.
// made when first needed: a Unicode property class costs a millisecond to compile at every start
let printable: RegExp | undefined;
const SHORT: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };

/**
 * A string as Go's `%q` (strconv.Quote) writes it, which BuildKit's messages use: in double
 * quotes, with `"` and `\` escaped, printable characters kept, and the rest as \n, \x1b, \u2028...
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if ((printable ??= /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u).test(ch)) out += ch;
    else if (SHORT[ch]) out += SHORT[ch];
    else {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}

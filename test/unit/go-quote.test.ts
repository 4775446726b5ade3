import { describe, expect, it } from 'vitest';
import { goQuote } from '../../src/util/go-quote.js';

// Go's strconv.Quote on the same inputs (fmt.Sprintf("%q", s))
const cases: Array<[string, string]> = [
  ['/bin/sh -c echo hi', '"/bin/sh -c echo hi"'],
  ['/bin/sh -c echo "say hi" && false', '"/bin/sh -c echo \\"say hi\\" && false"'],
  ['a\\b', '"a\\\\b"'],
  ['line\nnext\ttab\r', '"line\\nnext\\ttab\\r"'],
  ['\x1b[31mred\x00\x7f', '"\\x1b[31mred\\x00\\x7f"'],
  ['héllo ☃ 日本', '"héllo ☃ 日本"'],
  ['\u2028\u00a0', '"\\u2028\\u00a0"'],
];

describe('goQuote writes what Go\'s %q writes', () => {
  it.each(cases)('%j', (input, quoted) => {
    expect(goQuote(input)).toBe(quoted);
  });
});

import type { Env } from '../../dockerfile/shell-words.js';
import { expandWord, ShellWordError } from '../../dockerfile/shell-words.js';
import { fail, type StepContext } from '../step-context.js';

/**
 * Splits `k=v k2="v 2"` into words on unquoted whitespace, keeping quotes and escapes for the
 * expansion that follows (BuildKit's parseNameVal).
 */
export function splitWordsKeepingQuotes(text: string, escape: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      cur += c;
      if (c === escape && quote === '"' && i + 1 < text.length) cur += text[++i];
      else if (c === quote) quote = undefined;
    } else if (c === escape && i + 1 < text.length) {
      cur += c + text[++i];
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (/\s/.test(c)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) words.push(cur);
  return words;
}

export function expand(ctx: StepContext, word: string, env: Env = ctx.state.expansionEnv()): string {
  try {
    return expandWord(word, env, ctx.escape);
  } catch (err) {
    if (err instanceof ShellWordError) fail(ctx, `${ctx.ins.keyword}: ${err.message}`, err);
    throw err;
  }
}

/**
 * `KEY=value ...` pairs (ENV, LABEL), or the legacy `KEY value with spaces` form. Values are
 * expanded against the environment from before the instruction.
 */
export function parseKeyValues(ctx: StepContext, allowLegacy: boolean): Array<{ key: string; value: string }> {
  const words = splitWordsKeepingQuotes(ctx.ins.args, ctx.escape);
  if (words.length === 0) fail(ctx, `${ctx.ins.keyword} requires at least one argument`);
  const env = ctx.state.expansionEnv();
  if (!words[0]!.includes('=')) {
    if (!allowLegacy || words.length < 2) fail(ctx, `${ctx.ins.keyword} names can not be blank and must be given as KEY=value`);
    const key = expand(ctx, words[0]!, env);
    const rest = ctx.ins.args.trim().slice(words[0]!.length).trim();
    return [{ key, value: expand(ctx, rest, env) }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) fail(ctx, `${ctx.ins.keyword}: "${w}" is not KEY=value`);
    const key = expand(ctx, w.slice(0, eq), env);
    if (key === '') fail(ctx, `${ctx.ins.keyword} names can not be blank`);
    return { key, value: expand(ctx, w.slice(eq + 1), env) };
  });
}

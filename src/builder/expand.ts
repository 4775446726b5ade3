import { expandWord, expandWords, ShellWordError } from '../dockerfile/shell-words.js';
import { fail, type StepContext } from './step-context.js';

/** Expands one word with the stage's environment (BuildKit's ProcessWord); errors name the line. */
export function expand(ctx: StepContext, word: string, env = ctx.state.expansionEnv()): string {
  try {
    return expandWord(word, env, ctx.escape);
  } catch (err) {
    if (err instanceof ShellWordError) fail(ctx, `${ctx.ins.keyword}: ${err.message}`, err);
    throw err;
  }
}

/** Expands and splits into words (BuildKit's ProcessWords), as EXPOSE does. */
export function expandSplit(ctx: StepContext, text: string): string[] {
  try {
    return expandWords(text, ctx.state.expansionEnv(), ctx.escape);
  } catch (err) {
    if (err instanceof ShellWordError) fail(ctx, `${ctx.ins.keyword}: ${err.message}`, err);
    throw err;
  }
}

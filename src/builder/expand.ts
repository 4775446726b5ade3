// Expanding one word with a stage's environment, for the handlers that expand step by step (ARG).
import { expandWord, ShellWordError } from '../dockerfile/shell-words.js';
import { fail, type StepContext } from './step-context.js';

/**
 * Expands one word with the stage's environment (BuildKit's ProcessWord); errors name the line. Most
 * instructions arrive expanded (expand-instruction.ts); ARG expands its defaults one by one.
 */
export function expand(ctx: StepContext, word: string, env = ctx.state.expansionEnv()): string {
  try {
    return expandWord(word, env, ctx.escape);
  } catch (err) {
    if (err instanceof ShellWordError) fail(ctx, `${ctx.ins.keyword}: ${err.message}`, err);
    throw err;
  }
}

// ARG: a stage's build argument, from --build-arg, its default or a global ARG.
import type { ArgInstruction } from '../../dockerfile/instructions.js';
import { buildArgValue } from '../../plan/args.js';
import { expand } from '../expand.js';
import type { StepContext } from '../step-context.js';

/**
 * ARG, as BuildKit: a --build-arg value wins over the default; `ARG NAME` without either inherits a
 * global ARG's value; the value joins the step environment (not the image's ENV).
 */
export function arg(ctx: StepContext, ins: ArgInstruction): void {
  const parts: string[] = [];
  for (const a of ins.args) {
    const fromCli = buildArgValue(ctx.options.buildArgs, a.key);
    const declared = a.value !== undefined ? expand(ctx, a.value) : undefined;
    const value = fromCli ?? declared ?? ctx.state.globalArgs.find((g) => g.key === a.key)?.value;
    ctx.state.declareArg(a.key, value);
    parts.push(declared === undefined ? a.key : `${a.key}=${declared}`); // history shows the ARG as declared
  }
  ctx.state.addHistory(`ARG ${parts.join(' ')}`);
}

// Dispatch: one instruction, expanded, to its handler.
import type { Instruction } from '../../dockerfile/instructions.js';
import { expandInstruction } from '../expand-instruction.js';
import type { StepContext } from '../step-context.js';
import { arg } from './arg.js';
import * as config from './config.js';
import { copy } from './copy.js';
import { run } from './run.js';
import { workdir } from './workdir.js';

/** Runs one instruction of a stage (FROM is the stage itself), its words expanded first. */
export async function dispatch(ctx: StepContext, original: Instruction): Promise<void> {
  const globalEnv = (n: string) => ctx.state.globalArgs.find((a) => a.key === n)?.value;
  const ins = expandInstruction(original, ctx.state.expansionEnv(), globalEnv, ctx.escape);
  switch (ins.keyword) {
    case 'RUN':
      return run(ctx, ins);
    case 'COPY':
    case 'ADD':
      return copy(ctx, ins);
    case 'WORKDIR':
      return workdir(ctx, ins);
    case 'ARG':
      return arg(ctx, ins);
    case 'ENV':
      return config.env(ctx, ins);
    case 'LABEL':
      return config.label(ctx, ins);
    case 'USER':
      return config.user(ctx, ins);
    case 'STOPSIGNAL':
      return config.stopSignal(ctx, ins);
    case 'MAINTAINER':
      return config.maintainer(ctx, ins);
    case 'CMD':
      return config.cmd(ctx, ins);
    case 'ENTRYPOINT':
      return config.entrypoint(ctx, ins);
    case 'EXPOSE':
      return config.expose(ctx, ins);
    case 'VOLUME':
      return config.volume(ctx, ins);
    case 'SHELL':
      return config.shell(ctx, ins);
    case 'HEALTHCHECK':
      return config.healthcheck(ctx, ins);
    case 'ONBUILD':
      return config.onbuild(ctx, ins);
    case 'FROM':
      throw new Error('FROM is handled by the stage, not dispatched');
  }
}

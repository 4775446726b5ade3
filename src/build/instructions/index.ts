import type { StepContext } from '../step-context.js';
import { copy } from './copy.js';
import { arg, cmd, entrypoint, env, expose, label, user } from './metadata.js';
import { run } from './run.js';
import { workdir } from './workdir.js';

export type InstructionHandler = (ctx: StepContext) => void | Promise<void>;

/** One handler per instruction a stage executes (FROM is the stage itself). */
export const HANDLERS: Record<string, InstructionHandler> = {
  RUN: run,
  COPY: copy,
  WORKDIR: workdir,
  ENV: env,
  ARG: arg,
  LABEL: label,
  USER: user,
  CMD: cmd,
  ENTRYPOINT: entrypoint,
  EXPOSE: expose,
};

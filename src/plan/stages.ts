import type { Instruction, ParsedDockerfile } from '../dockerfile/instruction.js';
import { DockerfileError } from '../errors.js';

/** Instructions tsbuild builds today. */
export const SUPPORTED = new Set(['FROM', 'RUN', 'COPY', 'ENV', 'ARG', 'WORKDIR', 'USER', 'CMD', 'ENTRYPOINT', 'LABEL', 'EXPOSE']);
/** Dockerfile instructions that exist but that tsbuild does not build yet. */
export const NOT_YET = new Set(['ADD', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'ONBUILD', 'MAINTAINER']);

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as BuildKit compares them. */
  name?: string;
  from: Instruction;
  /** Base image or earlier stage, unexpanded. */
  base: string;
  instructions: Instruction[];
}

export interface BuildPlan {
  /** ARGs before the first FROM: usable in FROM lines. */
  globalArgs: Instruction[];
  stages: Stage[];
}

/** Splits a Dockerfile into stages and rejects what cannot be built, before anything runs. */
export function planStages(df: ParsedDockerfile): BuildPlan {
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of df.instructions) {
    if (!SUPPORTED.has(ins.keyword)) {
      if (NOT_YET.has(ins.keyword)) {
        throw new DockerfileError(`${ins.keyword} is not supported yet by tsbuild`, { location: ins.location });
      }
      throw new DockerfileError(`unknown instruction: ${ins.source.split(/\s/)[0]}`, { location: ins.location });
    }
    if (ins.keyword === 'FROM') {
      const words = ins.args.trim().split(/\s+/).filter(Boolean);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === 'AS')) {
        throw new DockerfileError('FROM requires either one or three arguments (FROM <image> [AS <name>])', { location: ins.location });
      }
      for (const f of ins.flags) {
        if (f.name !== 'platform') throw new DockerfileError(`FROM does not take --${f.name}`, { location: ins.location });
      }
      const name = words[2]?.toLowerCase();
      if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name)) {
        throw new DockerfileError(`invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`, { location: ins.location });
      }
      if (name !== undefined && stages.some((s) => s.name === name)) {
        throw new DockerfileError(`duplicate name ${name}`, { location: ins.location });
      }
      stages.push({ index: stages.length, name, from: ins, base: words[0]!, instructions: [] });
      continue;
    }
    const current = stages.at(-1);
    if (!current) {
      if (ins.keyword === 'ARG') {
        globalArgs.push(ins);
        continue;
      }
      throw new DockerfileError(`no build stage in current context: ${ins.keyword} must come after FROM`, { location: ins.location });
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) {
    throw new DockerfileError('the Dockerfile has no FROM instruction', { location: { file: df.file, line: 1 } });
  }
  return { globalArgs, stages };
}

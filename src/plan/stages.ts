// A Dockerfile split into global ARGs and stages.
import { toInstruction, type ArgInstruction, type FromInstruction, type Instruction } from '../dockerfile/instructions.js';
import type { ParsedDockerfile } from '../dockerfile/parse.js';
import { DockerfileError } from '../errors.js';

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as BuildKit compares them. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export interface ParsedStages {
  /** ARGs before the first FROM: usable in FROM lines, and in stages that redeclare them. */
  globalArgs: ArgInstruction[];
  stages: Stage[];
}

/**
 * Types every instruction and splits the Dockerfile into stages, so that anything unknown or
 * malformed fails before a single step runs.
 */
export function planStages(df: ParsedDockerfile): ParsedStages {
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const node of df.nodes) {
    const ins = toInstruction(node);
    if (ins.keyword === 'FROM') {
      if (ins.stageName !== undefined && stages.some((s) => s.name === ins.stageName)) {
        throw new DockerfileError(`duplicate name ${ins.stageName}`, { location: ins.location });
      }
      stages.push({ index: stages.length, name: ins.stageName, from: ins, instructions: [] });
      continue;
    }
    const current = stages.at(-1);
    if (!current) {
      if (ins.keyword === 'ARG') {
        globalArgs.push(ins);
        continue;
      }
      throw new DockerfileError('no build stage in current context', { location: ins.location });
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) {
    throw new DockerfileError('the Dockerfile has no FROM instruction', { location: { file: df.file, line: 1 } });
  }
  return { globalArgs, stages };
}

// A build decided before it runs: stages, bases, the stage graph.
import type { ParsedDockerfile } from '../dockerfile/parse.js';
import { expandWord, ShellWordError } from '../dockerfile/shell-words.js';
import { DockerfileError } from '../errors.js';
import { parsePlatform, type Platform } from '../image/platform.js';
import { argEnv, resolveGlobalArgs, type ArgValue } from './args.js';
import { neededStages } from './stage-graph.js';
import { planStages, type Stage } from './stages.js';

/** What a build will do, decided before any step runs. */
export interface BuildPlan {
  /** Every stage of the Dockerfile. */
  stages: Stage[];
  /** The stages the target needs, in Dockerfile order, and which stages each waits for. */
  needed: Stage[];
  dependencies: Map<number, number[]>;
  /** Each stage's base as FROM names it, global ARGs expanded (by stage index). */
  bases: string[];
  /** Each stage's FROM --platform, global ARGs expanded (by stage index; undefined without the flag). */
  platforms: Array<Platform | undefined>;
  globalArgs: ArgValue[];
}

/**
 * Plans a parsed Dockerfile: its stages, the global ARGs (with --build-arg), each FROM's base,
 * the stages the target needs and in which order they may run.
 */
export function planBuild(parsed: ParsedDockerfile, buildArgs: Record<string, string | undefined> | undefined, target: string | undefined, platform?: Platform): BuildPlan {
  const { globalArgs: argInstructions, stages } = planStages(parsed);
  const globalArgs = resolveGlobalArgs(argInstructions, buildArgs, parsed.escape, platform);
  const expandGlobal = (word: string, location: Stage['from']['location'], what: string) => {
    try {
      return expandWord(word, argEnv(globalArgs), parsed.escape);
    } catch (err) {
      if (err instanceof ShellWordError) throw new DockerfileError(`${what}: ${err.message}`, { location, cause: err });
      throw err;
    }
  };
  const bases = stages.map((s) => expandGlobal(s.from.base, s.from.location, 'FROM'));
  const platforms = stages.map((s) => {
    if (s.from.platform === undefined) return undefined;
    const text = expandGlobal(s.from.platform, s.from.location, 'FROM --platform');
    try {
      return parsePlatform(text);
    } catch (err) {
      throw new DockerfileError(`FROM --platform: ${(err as Error).message}`, { location: s.from.location, cause: err });
    }
  });
  const { needed, dependencies } = neededStages(stages, bases, target, (from) => expandWord(from, argEnv(globalArgs), parsed.escape));
  return { stages, needed, dependencies, bases, platforms, globalArgs };
}

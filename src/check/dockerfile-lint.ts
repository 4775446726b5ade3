// BuildKit's build checks over a Dockerfile, phase by phase as BuildKit runs them, then tsbuild's
// hygiene rules; the dispatch checks of a stage run when its base is known (stageChecks).
import { toInstruction, type ArgInstruction, type FromInstruction, type Instruction } from '../dockerfile/instructions.js';
import type { Node } from '../dockerfile/node.js';
import type { ParsedDockerfile } from '../dockerfile/parse.js';
import { DockerfileError, UsageError } from '../errors.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { goQuote } from '../util/go-quote.js';
import { RULES } from './rules.js';
import { platformArgs, resolveGlobalArgs, type ArgValue } from '../plan/args.js';
import { definitionDescription, emptyContinuations, parseRules } from './buildkit/parse-rules.js';
import { defaultArgsInFrom, fromArgs, type FromCheck } from './buildkit/from-rules.js';
import { dispatchStage, stateOnImage, stateOnStage, type StageLintState } from './buildkit/dispatch-rules.js';
import { instructionCasing, stageNames } from './buildkit/stage-rules.js';
import { aptListsKept } from './hygiene/apt-lists.js';
import { chownInOwnLayer } from './hygiene/chown-layer.js';
import { copyAllBeforeInstall } from './hygiene/copy-before-install.js';
import { fromUnpinned } from './hygiene/from-unpinned.js';
import { Linter, parseCheckOptions, type CheckConfig } from './linter.js';
import type { CheckInput } from './input.js';
import type { Stage } from '../plan/stages.js';

export interface LintOptions {
  buildArgs?: Record<string, string | undefined>;
  /** --platform: what TARGETPLATFORM is. */
  platform?: Platform;
  /** CopyIgnoredFile's test of a COPY source (the context's .dockerignore). */
  ignoresSource?: (src: string) => boolean | undefined;
}

/** The config: the BUILDKIT_DOCKERFILE_CHECK build arg when given (it replaces the directive), else `# check=`. */
export function checkConfig(parsed: ParsedDockerfile, buildArgs: Record<string, string | undefined> = {}): CheckConfig {
  const arg = 'BUILDKIT_DOCKERFILE_CHECK' in buildArgs ? (buildArgs.BUILDKIT_DOCKERFILE_CHECK ?? process.env.BUILDKIT_DOCKERFILE_CHECK) : undefined;
  if (arg !== undefined) {
    try {
      return parseCheckOptions(arg);
    } catch (err) {
      throw new UsageError(`failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: ${(err as Error).message}`);
    }
  }
  if (parsed.checkDirective === undefined) return {};
  try {
    return parseCheckOptions(parsed.checkDirective);
  } catch (err) {
    throw new DockerfileError(`failed to parse check options: ${(err as Error).message}`, { location: { file: parsed.file, line: 1 } });
  }
}

/** A stage as the checks see it: its FROM, its typed instructions, and their parsed lines. */
interface LintStage {
  index: number;
  name: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export class DockerfileLint {
  readonly linter: Linter;
  private readonly nodes = new Map<Instruction, Node>();
  private readonly stages: LintStage[] = [];
  private readonly globalArgs: ArgInstruction[] = [];
  private globalValues: ArgValue[] = [];
  /** Each stage's state when its dispatch checks ended, for the stages built on it. */
  private readonly ended = new Map<number, StageLintState>();

  constructor(
    private readonly parsed: ParsedDockerfile,
    private readonly options: LintOptions = {},
  ) {
    this.linter = new Linter(checkConfig(parsed, options.buildArgs));
  }

  /**
   * The checks of reading the Dockerfile and of its FROM lines (BuildKit's phases before dispatch),
   * in BuildKit's order. An instruction that does not parse throws, after the warnings before it.
   */
  fileChecks(): void {
    const { parsed, linter } = this;
    emptyContinuations(parsed.nodes, linter);
    const stageNodes: Node[] = [];
    const froms: Array<FromCheck & { index: number }> = [];
    for (const node of parsed.nodes) {
      parseRules(node, linter);
      const ins = toInstruction(node);
      this.nodes.set(ins, node);
      if (ins.keyword === 'FROM') {
        const name = ins.stageName ?? '';
        froms.push({ node, from: ins, name, index: froms.length });
        this.stages.push({ index: this.stages.length, name, from: ins, instructions: [] });
        if (ins.stageName) definitionDescription(node, linter, [ins.stageName]);
      } else {
        if (ins.keyword === 'ARG') definitionDescription(node, linter, ins.args.map((a) => a.key));
        const stage = this.stages.at(-1);
        if (!stage) {
          if (ins.keyword !== 'ARG') throw new DockerfileError('no build stage in current context', { location: ins.location });
          this.globalArgs.push(ins);
          continue;
        }
        stage.instructions.push(ins);
      }
      if (this.stages.length > 0) stageNodes.push(node);
    }
    stageNames(froms.map((f) => f.node), linter);
    instructionCasing(stageNodes, linter);
    const buildArgs = this.options.buildArgs ?? {};
    defaultArgsInFrom(froms, this.globalArgs, buildArgs, this.options.platform, parsed.escape, linter);
    try {
      this.globalValues = resolveGlobalArgs(this.globalArgs, buildArgs, parsed.escape, this.options.platform);
    } catch {
      this.globalValues = platformArgs(this.options.platform);
    }
    for (const f of froms) fromArgs(f, this.globalArgs, [...this.globalValues, ...PREDEFINED], parsed.escape, linter);
  }

  /** tsbuild's hygiene rules that read the Dockerfile alone (those that read files run with the steps). */
  hygieneChecks(stages: readonly Stage[], bases: readonly string[]): void {
    const input: CheckInput = { stages, bases, linter: this.linter };
    aptListsKept(input);
    chownInOwnLayer(input);
    copyAllBeforeInstall(input);
    fromUnpinned(input);
  }

  /**
   * The dispatch checks of one stage (BuildKit checks the stages it builds), on its base: an image's
   * config, or (`parent`) the stage it is built on, whose checks ran before. For an image:
   * InvalidBaseImagePlatform, when its platform (`platform`) is not the one the build is for
   * (`expected`: FROM --platform, else --platform, else the host's).
   */
  stageChecks(
    index: number,
    base: { image?: { Env?: string[]; Shell?: string[] }; parent?: number; name?: string; platform?: Platform; expected?: Platform },
  ): void {
    const stage = this.stages[index];
    if (!stage) return;
    const { platform, expected } = base;
    if (platform && expected && (platform.os !== expected.os || platform.architecture !== expected.architecture)) {
      const shown = (p: Platform) => goQuote(formatPlatform(p));
      this.linter.warn(RULES.InvalidBaseImagePlatform, `Base image ${base.name} was pulled with platform ${shown(platform)}, expected ${shown(expected)} for current build`, stage.from.location);
    }
    const parent = base.parent !== undefined ? this.ended.get(base.parent) : undefined;
    const start = parent ? stateOnStage(parent) : stateOnImage(base.image);
    const end = dispatchStage(stage.instructions, (ins) => this.nodes.get(ins)!, start, {
      escape: this.parsed.escape,
      buildArgs: this.options.buildArgs ?? {},
      globalArgs: this.globalValues,
      linter: this.linter,
      ignoresSource: this.options.ignoresSource,
    });
    this.ended.set(index, end);
  }
}

/** BuildKit's automatic ARGs that tsbuild does not set, but which count as declared in FROM. */
const PREDEFINED: ArgValue[] = ['BUILDOSVERSION', 'TARGETOSVERSION', 'TARGETSTAGE'].map((key) => ({ key, value: '' }));

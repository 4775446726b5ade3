import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { toInstruction, type ArgInstruction, type Instruction } from '../dockerfile/instructions.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { expandWord, ShellWordError } from '../dockerfile/shell-words.js';
import { DockerfileError, ImageNotFoundError, TsbuildError, UsageError, type SourceLocation } from '../errors.js';
import { nearest } from '../util/suggest.js';
import { located } from './step-error.js';
import { fromTitle, StageCounter, stepTitle } from './step-title.js';
import { hostArchitecture, serializeConfig, settleHistoryTimes } from '../image/config.js';
import { planStages, type Stage } from '../plan/stages.js';
import { writeEtcFiles } from '../sandbox/etc-files.js';
import { haveSlirp } from '../sandbox/run.js';
import { commitImage } from '../store/stored-image.js';
import { buildArgValue } from './instructions/arg.js';
import { BuildCache } from './cache.js';
import { StatCache } from '../store/stat-cache.js';
import { QuietProgress, stepOutput } from '../progress/progress.js';
import { dispatch } from './instructions/index.js';
import { StoreImageSource, type BaseImageSource } from './base-image.js';
import type { BuildOptions, BuildResult } from './options.js';
import { neededStages } from './stage-graph.js';
import { Semaphore } from '../util/limit.js';
import { StageState, type ArgValue } from './stage-state.js';
import type { StepContext } from './step-context.js';

function readDockerfile(file: string, shown: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`failed to read Dockerfile ${shown}: ${existsSync(file) ? (err as Error).message : 'no such file'}`, { cause: err });
  }
}

const where = (l: SourceLocation) => `${l.file}:${l.line}`;

/** BuildKit's automatic platform ARGs: global, usable in FROM, and in a stage once declared. */
export function platformArgs(): ArgValue[] {
  const arch = hostArchitecture();
  const platform = `linux/${arch}`;
  return [
    ['BUILDPLATFORM', platform], ['BUILDOS', 'linux'], ['BUILDARCH', arch], ['BUILDVARIANT', ''],
    ['TARGETPLATFORM', platform], ['TARGETOS', 'linux'], ['TARGETARCH', arch], ['TARGETVARIANT', ''],
  ].map(([key, value]) => ({ key: key!, value }));
}

/** Values of the ARGs declared before the first FROM, with --build-arg overrides. */
function resolveGlobalArgs(args: ArgInstruction[], options: BuildOptions, escape: string): ArgValue[] {
  const out: ArgValue[] = platformArgs();
  for (const ins of args) {
    for (const a of ins.args) {
      const env = (n: string) => out.find((x) => x.key === n)?.value;
      let declared: string | undefined;
      try {
        declared = a.value === undefined ? undefined : expandWord(a.value, env, escape);
      } catch (err) {
        throw new DockerfileError(`ARG: ${(err as Error).message}`, { location: ins.location, cause: err });
      }
      // a global ARG declared without a value has none, even for an automatic platform ARG (dockerd 20.10)
      const value = buildArgValue(options.buildArgs, a.key) ?? declared;
      out.splice(0, out.length, ...out.filter((x) => x.key !== a.key), { key: a.key, value });
    }
  }
  return out;
}

/** BuildKit's warnings that do not stop a build. */
function lintWarnings(stages: Stage[], globalArgs: ArgValue[]): string[] {
  const warnings: string[] = [];
  for (const s of stages) {
    for (const m of s.from.base.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
      if (!globalArgs.some((a) => a.key === m[1])) {
        warnings.push(`UndefinedArgInFrom: FROM argument '${m[1]}' is not declared (${where(s.from.location)})`);
      }
    }
    for (const ins of s.instructions) {
      if ((ins.keyword === 'CMD' || ins.keyword === 'ENTRYPOINT') && ins.prependShell) {
        warnings.push(`JSONArgsRecommended: JSON arguments recommended for ${ins.keyword} to prevent unintended behavior related to OS signals (${where(ins.location)})`);
      }
    }
  }
  return warnings;
}

/**
 * Builds a Dockerfile into the store: the stages the target needs, in order, every instruction by
 * its handler, then the target stage's image is recorded under the tags. Temp space is removed
 * whatever happens.
 */
export async function build(options: BuildOptions, source: BaseImageSource = new StoreImageSource(options.store)): Promise<BuildResult> {
  // while it runs, prune waits: nothing this build uses or makes can be collected under it
  return options.store.inUse(() => buildLocked(options, source));
}

async function buildLocked(options: BuildOptions, source: BaseImageSource): Promise<BuildResult> {
  const { store } = options;
  const progress = options.progress ?? new QuietProgress();
  const contextDir = path.resolve(options.contextDir);
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    throw new UsageError(`unable to prepare context: path "${options.contextDir}" not found or not a directory`);
  }
  const dockerfile = path.resolve(options.dockerfile ?? path.join(contextDir, 'Dockerfile'));
  const shown = path.relative(process.cwd(), dockerfile) || dockerfile;
  const parsed = parseDockerfile(readDockerfile(dockerfile, shown), shown);
  const plan = planStages(parsed);
  const ignore = IgnoreMatcher.fromContext(contextDir, options.dockerfile ? dockerfile : undefined);
  const globalArgs = resolveGlobalArgs(plan.globalArgs, options, parsed.escape);
  const expandFrom = (stage: Stage) => {
    try {
      return expandWord(stage.from.base, (n) => globalArgs.find((a) => a.key === n)?.value, parsed.escape);
    } catch (err) {
      if (err instanceof ShellWordError) throw new DockerfileError(`FROM: ${err.message}`, { location: stage.from.location });
      throw err;
    }
  };
  const bases = plan.stages.map(expandFrom);
  const { needed, dependencies } = neededStages(plan.stages, bases, options.target, (from) =>
    expandWord(from, (n) => globalArgs.find((a) => a.key === n)?.value, parsed.escape),
  );
  const warnings = [...parsed.warnings.map((w) => `${w.message} (${where(w.location)})`), ...lintWarnings(plan.stages, globalArgs)];
  if (!haveSlirp() && needed.some((s) => s.instructions.some((i) => i.keyword === 'RUN'))) {
    warnings.push('slirp4netns is not installed: RUN steps share the host network instead of a network of their own');
  }

  const epochText = buildArgValue(options.buildArgs, 'SOURCE_DATE_EPOCH') ?? process.env.SOURCE_DATE_EPOCH;
  const epochSeconds = epochText !== undefined && epochText !== '' ? parseEpoch(epochText) : undefined;
  const epoch = epochSeconds !== undefined ? new Date(epochSeconds * 1000).toISOString() : undefined;
  const cache = new BuildCache(store);
  const stats = StatCache.forContext(store.root, contextDir);
  const noCacheStages = new Set((options.noCacheFilter ?? []).map((n) => n.toLowerCase()));

  // known before any step runs, and shown then: never between a failed step and its error
  for (const w of warnings) progress.warning(w);
  const buildDir = store.makeTemp('build');
  try {
    const etcDir = path.join(buildDir, 'etc');
    mkdirSync(etcDir);
    const etcFiles = writeEtcFiles(etcDir);
    const built = new Map<string, StageState>();
    const stageNames = plan.stages.flatMap((s) => (s.name ? [s.name] : []));
    let step = 0;
    let stepSerial = 0;
    // one failing stage stops the others
    const failure = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
    const stepOptions = { ...options, signal };
    const runStep = async (state: StageState, stage: Stage, ins: Instruction, label: string) => {
      signal.throwIfAborted();
      const id = ++step;
      const started = Date.now();
      progress.step(id, label);
      const stepDir = path.join(buildDir, `step-${++stepSerial}`);
      mkdirSync(stepDir);
      const useCache = !options.noCache && !(stage.name && noCacheStages.has(stage.name));
      const output = stepOutput(progress, () => id);
      const ctx: StepContext = { store, state, ins, escape: parsed.escape, contextDir, ignore, options: stepOptions, etcFiles, stepDir, stages: built, stageNames, images: source, cache, useCache, stats, epochSeconds, output };
      try {
        await dispatch(ctx, ins);
      } catch (err) {
        const shown = located(err, ins, store.root);
        progress.failed(id, signal.aborted ? undefined : shown instanceof Error ? shown.message : String(shown));
        throw shown;
      }
      store.removeTemp(stepDir);
      progress.done(id, (Date.now() - started) / 1000, ctx.cached === true);
    };
    const buildStage = async (stage: Stage): Promise<StageState> => {
      const id = ++step;
      const baseName = bases[stage.index]!;
      if (baseName === '') throw new DockerfileError(`base name (${stage.from.base}) should not be blank`, { location: stage.from.location });
      const earlier = built.get(baseName.toLowerCase());
      let state: StageState;
      const counterWith = (triggers: number) => StageCounter.of(stage, plan.stages.length, triggers);
      const from = fromTitle(baseName, earlier !== undefined);
      if (earlier) {
        state = new StageState(earlier.config, earlier.layers, globalArgs, epoch);
        state.baseImageId = earlier.baseImageId;
      } else {
        try {
          const base = await source.resolve(baseName);
          state = new StageState(base.config, base.layers, globalArgs, epoch);
          state.baseImageId = base.id;
        } catch (err) {
          const shown = baseFailure(err, baseName, stage, stageNames);
          progress.step(id, counterWith(0).next(from));
          progress.failed(id, shown instanceof Error ? shown.message : String(shown));
          throw shown;
        }
      }
      const triggers = state.config.config.OnBuild ?? [];
      const counter = counterWith(triggers.length);
      progress.step(id, counter.next(from));
      progress.done(id, 0, false);
      state.setRuntime({ OnBuild: undefined });
      const title = (ins: Instruction) => stepTitle(ins, state.expansionEnv(), parsed.escape);
      for (const trigger of triggers) {
        const ins = onbuildTrigger(trigger, stage.from.location, parsed.escape);
        await runStep(state, stage, ins, counter.next(`ONBUILD ${title(ins)}`));
      }
      for (const ins of stage.instructions) await runStep(state, stage, ins, counter.next(title(ins)));
      if (stage.name) built.set(stage.name, state);
      built.set(String(stage.index), state);
      return state;
    };
    // stages run as soon as the stages they use are done, at most --jobs at a time
    const slots = new Semaphore(Math.max(1, options.jobs ?? os.cpus().length));
    const running = new Map<number, Promise<StageState>>();
    for (const stage of needed) {
      const deps = (dependencies.get(stage.index) ?? []).map((d) => running.get(d)!);
      running.set(
        stage.index,
        Promise.all(deps).then(() => slots.run(() => buildStage(stage))),
      );
    }
    const outcomes = await Promise.allSettled(
      [...running.values()].map((p) =>
        p.catch((err: unknown) => {
          failure.abort(err);
          throw err;
        }),
      ),
    );
    const firstError = outcomes.find((o) => o.status === 'rejected');
    if (firstError) {
      throw options.signal?.aborted ? options.signal.reason : failure.signal.reason;
    }
    const final = await running.get(needed.at(-1)!.index)!;
    stats.save();
    const config = settleHistoryTimes(final.config, epoch);
    const imageId = await commitImage(store, serializeConfig(config), options.tags ?? [], final.baseImageId);
    progress.info(`writing image ${imageId} done`);
    for (const t of options.tags ?? []) progress.info(`naming to ${t} done`);
    return { imageId, tags: options.tags ?? [] };
  } finally {
    store.removeTemp(buildDir);
  }
}

/** A FROM whose base cannot be had, on its line; a name near a stage's is likelier a typo than a missing image. */
function baseFailure(err: unknown, baseName: string, stage: Stage, stageNames: readonly string[]): unknown {
  if (!(err instanceof TsbuildError) || err.location) return err;
  const hint = err instanceof ImageNotFoundError ? nearest(baseName, stageNames.filter((n) => n !== stage.name), true) : undefined;
  const message = hint ? `FROM ${baseName}: no stage or image is named ${baseName} (did you mean ${hint}?)` : err.message;
  return new DockerfileError(message, { location: stage.from.location, cause: err });
}

function parseEpoch(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${text}": expected seconds since 1970`);
  return Number(text);
}

/** An ONBUILD trigger of the base image, parsed as a one-line Dockerfile, located at the FROM. */
function onbuildTrigger(trigger: string, at: SourceLocation, escape: string): Instruction {
  const text = escape === '\\' ? trigger : `# escape=${escape}\n${trigger}`;
  const parsed = parseDockerfile(text, at.file);
  const ins = toInstruction({ ...parsed.nodes[0]!, location: at });
  if (ins.keyword === 'FROM' || ins.keyword === 'ONBUILD' || ins.keyword === 'MAINTAINER') {
    throw new DockerfileError(`${ins.keyword} isn't allowed as an ONBUILD trigger`, { location: at });
  }
  return ins;
}

// The stage runner: a stage's base, its ONBUILD triggers and its steps, each with its progress.
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { toInstruction, type Instruction } from '../dockerfile/instructions.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { DockerfileError, ImageNotFoundError, RegistryError, TsbuildError, type SourceLocation } from '../errors.js';
import type { BuildPlan } from '../plan/build-plan.js';
import type { Stage } from '../plan/stages.js';
import { stepOutput, type Progress } from '../progress/progress.js';
import type { StatCache } from '../store/stat-cache.js';
import { nearest } from '../util/suggest.js';
import { formatPlatform, hostPlatform } from '../image/platform.js';
import type { BaseImageSource, RemoteBase, ResolveOptions } from './base-image.js';
import type { BuildCache } from '../store/build-cache.js';
import type { StepRecords } from '../store/step-records.js';
import type { DockerfileLint } from '../check/dockerfile-lint.js';
import { stepSlot } from './cache-miss.js';
import type { BuildTemp } from './build-temp.js';
import type { BuiltStep } from '../remote-cache/export.js';
import type { ImportedCache } from '../remote-cache/imported.js';
import { dispatch } from './instructions/index.js';
import type { BuildOptions } from './options.js';
import { StageState } from './stage-state.js';
import type { StepContext } from './step-context.js';
import { located } from './step-error.js';
import { fromTitle, StageCounter, stepTitle } from './step-title.js';

/** What every stage and step of one build shares. */
export interface BuildRun {
  /** The build's options, with the signal that stops every stage when one fails. */
  options: BuildOptions & { signal: AbortSignal };
  plan: BuildPlan;
  escape: string;
  contextDir: string;
  /** The Dockerfile's absolute path. */
  dockerfile: string;
  ignore: IgnoreMatcher;
  /** The build checks: a stage's dispatch checks run once its base is known. */
  lint: DockerfileLint;
  progress: Progress;
  source: BaseImageSource;
  cache: BuildCache;
  /** What each step was last built from, to tell why it misses. */
  records: StepRecords;
  stats: StatCache;
  /** The build's temp space: each step that needs one gets a fresh directory in it. */
  temp: BuildTemp;
  /** Stages built so far, by name and by index. */
  built: Map<string, StageState>;
  /** Warnings steps have told (each is told once a build). */
  warned: Set<string>;
  /** --no-cache-filter's stages. */
  noCacheStages: Set<string>;
  /** SOURCE_DATE_EPOCH, in seconds and as an ISO time. */
  epochSeconds?: number;
  epoch?: string;
  /** Steps started so far: the next step's #number. */
  steps: number;
  /** The "load metadata" steps of registry images, by name and platform. */
  metadata: Map<string, Promise<RemoteBase | undefined>>;
  /** --cache-from's records, once read. */
  imported?: ImportedCache;
  /** With --cache-to: every cached step's key and result. */
  cachedSteps?: BuiltStep[];
}

/**
 * Builds one stage: its base (an earlier stage, an image, or scratch), the base's ONBUILD
 * triggers, then its instructions, each a step of its own with a BuildKit-style name.
 */
export async function runStage(run: BuildRun, stage: Stage): Promise<StageState> {
  const { progress, plan } = run;
  const baseName = plan.bases[stage.index]!;
  if (baseName === '') throw new DockerfileError(`base name (${stage.from.base}) should not be blank`, { location: stage.from.location });
  const earlier = run.built.get(baseName.toLowerCase());
  const counterWith = (triggers: number) => StageCounter.of(stage, plan.stages.length, triggers);
  let state: StageState;
  let id: number;
  let counter!: StageCounter;
  let started = Date.now();
  if (earlier) {
    id = ++run.steps;
    state = new StageState(earlier.config, earlier.layers, plan.globalArgs, run.epoch);
    state.baseImageId = earlier.baseImageId;
    state.layerSteps = new Map(earlier.layerSteps);
    counter = counterWith(earlier.config.config.OnBuild?.length ?? 0);
    progress.step(id, counter.next(fromTitle(baseName, true)));
  } else {
    const opts = { platform: plan.platforms[stage.index] };
    const remote = await loadMetadata(run, stage, baseName, opts);
    id = ++run.steps;
    started = Date.now();
    const from = fromTitle(remote?.pinned ?? baseName, false);
    // a pulled image's step is shown while its layers come (its ONBUILD count is known from its config)
    if (remote) progress.step(id, (counter = counterWith(remote.config.config.OnBuild?.length ?? 0)).next(from));
    try {
      if (!remote && nearStage(run, stage, baseName) && !run.source.has(baseName, opts)) throw new ImageNotFoundError(`no image is named ${baseName}`);
      const base = await run.source.resolve(baseName, { ...opts, status: (line) => progress.status(id, line) });
      state = new StageState(base.config, base.layers, plan.globalArgs, run.epoch);
      state.baseImageId = base.id;
    } catch (err) {
      const shown = baseFailure(err, baseName, stage, stageNames(plan));
      if (!remote) progress.step(id, counterWith(0).next(from));
      progress.failed(id, shown instanceof Error ? shown.message : String(shown));
      throw shown;
    }
    if (!remote) progress.step(id, (counter = counterWith(state.config.config.OnBuild?.length ?? 0)).next(from));
  }
  progress.done(id, (Date.now() - started) / 1000, false);
  const parent = earlier ? plan.stages.find((s) => s.name === baseName.toLowerCase()) : undefined;
  const imagePlatform = { os: state.config.os, architecture: state.config.architecture };
  const expected = plan.platforms[stage.index] ?? run.options.platform ?? hostPlatform();
  run.lint.stageChecks(
    stage.index,
    parent ? { parent: parent.index } : { image: state.config.config, ...(baseName !== 'scratch' ? { name: baseName, platform: imagePlatform, expected } : {}) },
  );
  const failed = run.lint.linter.failure();
  if (failed) throw failed;
  const triggers = state.config.config.OnBuild ?? [];
  state.setRuntime({ OnBuild: undefined });
  const title = (ins: Instruction) => stepTitle(ins, state.expansionEnv(), run.escape);
  for (const [i, trigger] of triggers.entries()) {
    const ins = onbuildTrigger(trigger, stage.from.location, run.escape);
    await runStep(run, state, stage, ins, counter.next(`ONBUILD ${title(ins)}`), `onbuild-${i}`);
  }
  for (const [i, ins] of stage.instructions.entries()) await runStep(run, state, stage, ins, counter.next(title(ins)), String(i));
  if (stage.name) run.built.set(stage.name, state);
  run.built.set(String(stage.index), state);
  return state;
}

/** Runs one instruction as a step: its progress lines, a fresh step dir, its handler; any failure on its line. */
async function runStep(run: BuildRun, state: StageState, stage: Stage, ins: Instruction, label: string, position: string): Promise<void> {
  const { options, progress } = run;
  const { store, signal } = options;
  signal.throwIfAborted();
  const id = ++run.steps;
  const started = Date.now();
  progress.step(id, label);
  let stepDir: string | undefined;
  const ctx: StepContext = {
    store,
    state,
    ins,
    escape: run.escape,
    contextDir: run.contextDir,
    ignore: run.ignore,
    options,
    get etcFiles() {
      return run.temp.etcFiles();
    },
    get stepDir() {
      return (stepDir ??= run.temp.subdir(`step-${id}`));
    },
    stages: run.built,
    stageNames: stageNames(run.plan),
    images: run.source,
    cache: run.cache,
    useCache: !options.noCache && !(stage.name && run.noCacheStages.has(stage.name)),
    explain: {
      records: run.records,
      slot: stepSlot({ contextDir: run.contextDir, dockerfile: run.dockerfile, platform: run.plan.platforms[stage.index] && formatPlatform(run.plan.platforms[stage.index]!), stage: stage.name ?? String(stage.index), position }),
      noCache: options.noCache ? '--no-cache' : stage.name && run.noCacheStages.has(stage.name) ? `--no-cache-filter ${stage.name}` : undefined,
      base: stage.from.base,
      report: (miss) => progress.cacheMiss(id, miss),
    },
    stats: run.stats,
    epochSeconds: run.epochSeconds,
    output: stepOutput(progress, () => id),
    status: (line) => progress.status(id, line),
    warn: (line) => {
      if (run.warned.has(line)) return;
      run.warned.add(line);
      progress.warning(line);
    },
    imported: run.imported,
    built: run.cachedSteps,
    linter: run.lint.linter,
  };
  try {
    await dispatch(ctx, ins);
  } catch (err) {
    const shown = located(err, ins, store.root);
    progress.failed(id, signal.aborted ? undefined : shown instanceof Error ? shown.message : String(shown));
    throw shown;
  }
  if (stepDir) run.temp.release(stepDir);
  progress.done(id, (Date.now() - started) / 1000, ctx.cached === true);
}

/**
 * BuildKit's "[internal] load metadata for docker.io/library/x:tag" step, for a base the store will
 * not serve: the registry's manifest and config. A name near a stage's is not looked up (a typo is
 * likelier than an image of that name): its FROM step fails with "did you mean".
 */
async function loadMetadata(run: BuildRun, stage: Stage, baseName: string, opts: ResolveOptions): Promise<RemoteBase | undefined> {
  const { source, progress } = run;
  let stored: boolean;
  try {
    stored = source.has(baseName, opts);
  } catch (err) {
    throw baseFailure(err, baseName, stage, stageNames(run.plan)); // a name that is no reference, on its FROM line
  }
  if ((stored && !run.options.pull) || nearStage(run, stage, baseName)) return undefined;
  // one step per image and platform, however many stages start FROM it
  const key = `${baseName}|${opts.platform ? formatPlatform(opts.platform) : ''}`;
  const known = run.metadata.get(key);
  if (known) return known;
  const step = (async () => {
    const id = ++run.steps;
    const started = Date.now();
    progress.step(id, `[internal] load metadata for ${fromTitle(baseName, false).slice('FROM '.length)}`);
    try {
      const remote = await source.remote(baseName, opts);
      progress.done(id, (Date.now() - started) / 1000, false);
      return remote;
    } catch (err) {
      const shown = baseFailure(err, baseName, stage, stageNames(run.plan));
      progress.failed(id, shown instanceof Error ? shown.message : String(shown));
      throw shown;
    }
  })();
  run.metadata.set(key, step);
  return step;
}

const stageNames = (plan: BuildPlan) => plan.stages.flatMap((s) => (s.name ? [s.name] : []));

/** The stage (other than this one) whose name is nearly `name`: a FROM of a typo. */
const nearStage = (run: BuildRun, stage: Stage, name: string) => nearest(name, stageNames(run.plan).filter((n) => n !== stage.name), true);

/** A FROM whose base cannot be had, on its line; a name near a stage's is likelier a typo than a missing image. */
function baseFailure(err: unknown, baseName: string, stage: Stage, stageNames: readonly string[]): unknown {
  if (!(err instanceof TsbuildError) || err.location) return err;
  const hint = err instanceof ImageNotFoundError || err instanceof RegistryError ? nearest(baseName, stageNames.filter((n) => n !== stage.name), true) : undefined;
  const message = hint ? `FROM ${baseName}: no stage or image is named ${baseName} (did you mean ${hint}?)` : err.message;
  return new DockerfileError(message, { location: stage.from.location, cause: err });
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

// The build runner: reads and plans a Dockerfile, runs its stages side by side, commits the image.
import os from 'node:os';
import { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { parseDockerfile, type ParsedDockerfile } from '../dockerfile/parse.js';
import { UsageError } from '../errors.js';
import { serializeConfig, settleHistoryTimes } from '../image/config.js';
import { buildArgValue } from '../plan/args.js';
import { planBuild } from '../plan/build-plan.js';
import { QuietProgress, type CheckNote, type Progress } from '../progress/progress.js';
import { DockerfileLint } from '../check/dockerfile-lint.js';
import type { CheckWarning } from '../check/linter.js';
import { checkWastedBytes } from './wasted-bytes.js';
import { closeStepNetworks } from '../sandbox/network-pool.js';
import { StatCache } from '../store/stat-cache.js';
import { commitImage } from '../store/stored-image.js';
import { Semaphore } from '../util/limit.js';
import { ImageSource, type BaseImageSource } from './base-image.js';
import { exportCaches, importCaches, inlineCache } from './cache-transfer.js';
import { BuildCache } from '../store/build-cache.js';
import { StepRecords } from '../store/step-records.js';
import { BuildTemp } from './build-temp.js';
import type { BuildOptions, BuildResult } from './options.js';
import { runStage, type BuildRun } from './stage-runner.js';
import { readBuildInput } from './build-input.js';
import type { StageState } from './stage-state.js';

/**
 * Builds a Dockerfile into the store: the stages the target needs, each as soon as the stages it
 * uses are done (at most --jobs at a time), then the target stage's image is recorded under the
 * tags. Temp space is removed whatever happens.
 */
export async function build(options: BuildOptions, source: BaseImageSource = new ImageSource(options.store, options)): Promise<BuildResult> {
  try {
    // while it runs, prune waits: nothing this build uses or makes can be collected under it
    return await options.store.inUse(() => buildLocked(options, source));
  } finally {
    closeStepNetworks(); // the namespace made ahead for a step that will not come
  }
}

async function buildLocked(options: BuildOptions, source: BaseImageSource): Promise<BuildResult> {
  const progress = options.progress ?? new QuietProgress();
  const { contextDir, dockerfile, shown, text } = readBuildInput(options.contextDir, options.dockerfile);
  const parsed = parseDockerfile(text, shown);
  const ignore = IgnoreMatcher.fromContext(contextDir, options.dockerfile ? dockerfile : undefined);
  // BuildKit's build checks, and tsbuild's hygiene rules: told at the end, whatever happens
  const lint = new DockerfileLint(parsed, { buildArgs: options.buildArgs, platform: options.platform, ignoresSource: (src) => ignore.ignoresSource(src) });
  try {
    return await checkedBuild(options, source, { parsed, lint, ignore, contextDir, dockerfile, progress });
  } finally {
    progress.checks(checkNotes(lint.linter.warnings));
  }
}

/** The build once its Dockerfile is read: planned, checked, run. */
async function checkedBuild(
  options: BuildOptions,
  source: BaseImageSource,
  read: { parsed: ParsedDockerfile; lint: DockerfileLint; ignore: IgnoreMatcher; contextDir: string; dockerfile: string; progress: Progress },
): Promise<BuildResult> {
  const { store } = options;
  const { parsed, lint, ignore, contextDir, dockerfile, progress } = read;
  lint.fileChecks();
  const plan = planBuild(parsed, options.buildArgs, options.target, options.platform);
  lint.hygieneChecks(plan.stages, plan.bases);
  const failed = lint.linter.failure();
  if (failed) throw failed;
  const warnings: string[] = [];
  const epochText = buildArgValue(options.buildArgs, 'SOURCE_DATE_EPOCH') ?? process.env.SOURCE_DATE_EPOCH;
  const epochSeconds = epochText !== undefined && epochText !== '' ? parseEpoch(epochText) : undefined;

  // known before any step runs, and shown then: never between a failed step and its error
  for (const w of warnings) progress.warning(w);
  const temp = new BuildTemp(store);
  // one failing stage stops the others
  const failure = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
  try {
    const run: BuildRun = {
      options: { ...options, signal },
      plan,
      escape: parsed.escape,
      contextDir,
      dockerfile,
      ignore,
      lint,
      progress,
      source,
      cache: new BuildCache(store),
      records: new StepRecords(store.root),
      stats: StatCache.forContext(store.root, contextDir),
      temp,
      built: new Map(),
      noCacheStages: new Set((options.noCacheFilter ?? []).map((n) => n.toLowerCase())),
      epochSeconds,
      epoch: epochSeconds !== undefined ? new Date(epochSeconds * 1000).toISOString() : undefined,
      steps: 0,
      warned: new Set(),
      metadata: new Map(),
      cachedSteps: options.cacheTo?.length ? [] : undefined,
    };
    run.imported = await importCaches(run, () => temp.subdir('cache-import'));
    const slots = new Semaphore(Math.max(1, options.jobs ?? os.availableParallelism()));
    const running = new Map<number, Promise<StageState>>();
    for (const stage of plan.needed) {
      const deps = (plan.dependencies.get(stage.index) ?? []).map((d) => running.get(d)!);
      running.set(stage.index, Promise.all(deps).then(() => slots.run(() => runStage(run, stage))));
    }
    const outcomes = await Promise.allSettled(
      [...running.values()].map((p) =>
        p.catch((err: unknown) => {
          failure.abort(err);
          throw err;
        }),
      ),
    );
    if (outcomes.some((o) => o.status === 'rejected')) throw options.signal?.aborted ? options.signal.reason : failure.signal.reason;
    const final = await running.get(plan.needed.at(-1)!.index)!;
    run.stats.save();
    await run.imported?.materialize(final.layers); // the image's layers that came from --cache-from
    const config = settleHistoryTimes(final.config, run.epoch);
    const inline = run.cachedSteps ? await inlineCache(run, run.cachedSteps, final.layers) : undefined;
    const { id: imageId, manifest } = await commitImage(store, serializeConfig(inline ? { ...config, inlineCache: inline } : config), options.tags ?? [], { parent: final.baseImageId });
    progress.info(`writing image ${imageId} done`);
    await checkWastedBytes(store, imageId, final, lint.linter);
    for (const t of options.tags ?? []) progress.info(`naming to ${t} done`);
    if (run.cachedSteps) await exportCaches(run, run.cachedSteps, final.layers);
    return { imageId, manifestDigest: manifest, tags: options.tags ?? [] };
  } finally {
    await temp.remove();
  }
}

/** Check warnings as a build reports them: one of each, by line. */
export function checkNotes(warnings: readonly CheckWarning[]): CheckNote[] {
  const seen = new Set<string>();
  const notes: CheckNote[] = [];
  for (const w of [...warnings].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0))) {
    const note: CheckNote = {
      rule: w.rule.name,
      message: w.message,
      ...(w.location ? { file: w.location.file, line: w.location.line } : {}),
      ...(w.rule.url ? { url: w.rule.url } : {}),
      ...(w.rule.fix ? { fix: w.rule.fix } : {}),
    };
    const key = JSON.stringify(note);
    if (seen.has(key)) continue;
    seen.add(key);
    notes.push(note);
  }
  return notes;
}

function parseEpoch(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${text}": expected seconds since 1970`);
  return Number(text);
}

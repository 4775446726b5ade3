import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { expandWord, ShellWordError } from '../dockerfile/shell-words.js';
import { DockerfileError, TsbuildError, UsageError } from '../errors.js';
import { serializeConfig } from '../image/config.js';
import { planStages, type Stage } from '../plan/stages.js';
import { writeEtcFiles } from '../sandbox/etc-files.js';
import { commitImage } from '../store/stored-image.js';
import { StoreImageSource, type BaseImageSource } from './base-image.js';
import { HANDLERS } from './instructions/index.js';
import type { BuildOptions, BuildResult } from './options.js';
import { StageState, type ArgValue } from './stage-state.js';
import type { StepContext } from './step-context.js';

function readDockerfile(file: string, shown: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`failed to read Dockerfile ${shown}: ${existsSync(file) ? (err as Error).message : 'no such file'}`, { cause: err });
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Builds a Dockerfile into the store: every stage in order, every instruction by its handler, then
 * the final stage's image is recorded under the tags. Temp space is removed whatever happens.
 */
export async function build(options: BuildOptions, source: BaseImageSource = new StoreImageSource(options.store)): Promise<BuildResult> {
  const { store } = options;
  const log = options.log ?? (() => {});
  const contextDir = path.resolve(options.contextDir);
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    throw new UsageError(`unable to prepare context: path "${options.contextDir}" not found or not a directory`);
  }
  const dockerfile = path.resolve(options.dockerfile ?? path.join(contextDir, 'Dockerfile'));
  const shown = path.relative(process.cwd(), dockerfile) || dockerfile;
  const parsed = parseDockerfile(readDockerfile(dockerfile, shown), shown);
  const plan = planStages(parsed);
  const ignore = IgnoreMatcher.fromContext(contextDir, options.dockerfile ? dockerfile : undefined);
  const total = plan.stages.reduce((n, s) => n + 1 + s.instructions.length, 0);

  const buildDir = store.makeTemp('build');
  try {
    const etcDir = path.join(buildDir, 'etc');
    mkdirSync(etcDir);
    const etcFiles = writeEtcFiles(etcDir);
    const globalArgs = resolveGlobalArgs(plan.globalArgs.map((i) => i.args), options, parsed.escape);
    const built = new Map<string, StageState>();
    let step = 0;
    let stepSerial = 0;
    let last: StageState | undefined;
    for (const stage of plan.stages) {
      step++;
      const { state, baseName } = await startStage(stage, globalArgs, built, source, parsed.escape);
      log(`#${step} [${step}/${total}] FROM ${baseName}${stage.name ? ` AS ${stage.name}` : ''}`);
      for (const ins of stage.instructions) {
        step++;
        options.signal?.throwIfAborted();
        const started = Date.now();
        log(`#${step} [${step}/${total}] ${ins.keyword} ${ins.args.trim()}`.trimEnd());
        const stepDir = path.join(buildDir, `step-${++stepSerial}`);
        mkdirSync(stepDir);
        const ctx: StepContext = { store, state, ins, escape: parsed.escape, contextDir, ignore, options, etcFiles, stepDir };
        await HANDLERS[ins.keyword]!(ctx);
        store.removeTemp(stepDir);
        log(`#${step} DONE ${formatSeconds(Date.now() - started)}`);
      }
      if (stage.name) built.set(stage.name, state);
      last = state;
    }
    const final = last!;
    const config = { ...final.config, created: new Date().toISOString() };
    const imageId = await commitImage(store, serializeConfig(config), options.tags ?? []);
    log(`writing image ${imageId} done`);
    for (const t of options.tags ?? []) log(`naming to ${t} done`);
    return { imageId, tags: options.tags ?? [] };
  } finally {
    store.removeTemp(buildDir);
  }
}

/** Values of the ARGs declared before the first FROM, with --build-arg overrides. */
function resolveGlobalArgs(lines: string[], options: BuildOptions, escape: string): ArgValue[] {
  const out: ArgValue[] = [];
  for (const line of lines) {
    for (const word of line.trim().split(/\s+/).filter(Boolean)) {
      const eq = word.indexOf('=');
      const key = eq < 0 ? word : word.slice(0, eq);
      const env = (n: string) => out.find((a) => a.key === n)?.value;
      const declared = eq < 0 ? undefined : expandWord(word.slice(eq + 1), env, escape);
      const cli = options.buildArgs && key in options.buildArgs ? (options.buildArgs[key] ?? process.env[key]) : undefined;
      out.push({ key, value: cli ?? declared });
    }
  }
  return out;
}

async function startStage(
  stage: Stage,
  globalArgs: ArgValue[],
  built: Map<string, StageState>,
  source: BaseImageSource,
  escape: string,
): Promise<{ state: StageState; baseName: string }> {
  let baseName: string;
  try {
    baseName = expandWord(stage.base, (n) => globalArgs.find((a) => a.key === n)?.value, escape);
  } catch (err) {
    if (err instanceof ShellWordError) throw new DockerfileError(`FROM: ${err.message}`, { location: stage.from.location });
    throw err;
  }
  if (baseName === '') throw new DockerfileError(`FROM: base name (${stage.base}) should not be blank`, { location: stage.from.location });
  const earlier = built.get(baseName.toLowerCase());
  if (earlier) return { state: new StageState(earlier.config, earlier.layers, globalArgs), baseName };
  try {
    const base = await source.resolve(baseName);
    return { state: new StageState(base.config, base.layers, globalArgs), baseName: base.name };
  } catch (err) {
    if (err instanceof TsbuildError && !err.location) {
      throw new DockerfileError(err.message, { location: stage.from.location, cause: err });
    }
    throw err;
  }
}

// `tsbuild build --check` and the library's checkDockerfile(): every build check, without building.
import path from 'node:path';
import { ImageSource } from '../builder/base-image.js';
import { readBuildInput } from '../builder/build-input.js';
import { archiveKind } from '../builder/add-sources.js';
import { fileHead } from '../builder/instructions/copy-hygiene.js';
import { ContextTree, isSent, resolveSources, SourceError } from '../builder/source-tree.js';
import { DockerfileLint } from '../check/dockerfile-lint.js';
import { contextFileRules } from '../check/hygiene/context-files.js';
import type { ContextFiles } from '../check/input.js';
import type { CheckWarning } from '../check/linter.js';
import { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { TsbuildError } from '../errors.js';
import { hostPlatform, parsePlatform } from '../image/platform.js';
import { planBuild } from '../plan/build-plan.js';
import type { RegistryOptions } from '../registry/hosts.js';
import { defaultRoot, Store } from '../store/store.js';

export interface CheckRequest {
  /** The build context directory. */
  context: string;
  /** -f: the Dockerfile (default <context>/Dockerfile). */
  file?: string;
  buildArgs?: Record<string, string | undefined>;
  /** --target: only the stages it needs are checked (default: every stage). */
  target?: string;
  platform?: string;
  /** The store, for the base images' configs (their ENV and SHELL); a registry is asked for the others. */
  root?: string;
  registry?: RegistryOptions;
}

export interface CheckOutcome {
  /** The Dockerfile as named in messages, and its text (for the lines quoted with each warning). */
  file: string;
  text: string;
  /** In the order BuildKit gives them. */
  warnings: CheckWarning[];
  /** What stops the build: a Dockerfile error, or `error=true` with a warning. */
  error?: TsbuildError;
}

/** The build context as COPY sees it, for the checks that read files. */
function contextFiles(contextDir: string, ignore: IgnoreMatcher): ContextFiles {
  const tree = new ContextTree(contextDir, ignore);
  return {
    sources(source) {
      let entries;
      try {
        entries = resolveSources(tree, source);
      } catch (err) {
        if (err instanceof SourceError) return [];
        throw err;
      }
      const out: Array<{ path: string; dir: boolean }> = [];
      const walk = (comps: readonly string[], rel: string) => {
        for (const [name, st] of tree.list(comps)) {
          const childRel = rel === '' ? name : `${rel}/${name}`;
          if (!isSent(tree, childRel, st)) continue;
          out.push({ path: childRel, dir: st.isDirectory() });
          if (st.isDirectory()) walk([...comps, name], childRel);
        }
      };
      for (const e of entries) {
        out.push({ path: e.rel, dir: e.stat.isDirectory() });
        if (e.stat.isDirectory()) walk(e.comps, e.rel);
      }
      return out;
    },
    head(rel, bytes) {
      try {
        return fileHead(path.join(contextDir, rel), bytes);
      } catch {
        return Buffer.alloc(0);
      }
    },
    ignored: (source) => ignore.ignoresSource(source) === true,
    isArchive: async (rel) => (await archiveKind(path.join(contextDir, rel))) !== undefined,
  };
}

/**
 * Runs every check of a build, as `docker build --check` does: BuildKit's rules over every stage
 * (or those --target needs), on the base images' configs (from the store, else their registry),
 * then tsbuild's hygiene rules, those that read the context included. Nothing is built or pulled.
 */
export async function checkDockerfile(request: CheckRequest): Promise<CheckOutcome> {
  const { contextDir, dockerfile, shown: file, text } = readBuildInput(request.context, request.file);
  const outcome: CheckOutcome = { file, text, warnings: [] };
  const ignore = IgnoreMatcher.fromContext(contextDir, request.file ? dockerfile : undefined);
  const platform = request.platform ? parsePlatform(request.platform) : undefined;
  let lint: DockerfileLint | undefined;
  const store = Store.open(request.root ?? defaultRoot(), { sweep: false });
  try {
    const parsed = parseDockerfile(text, file);
    lint = new DockerfileLint(parsed, { buildArgs: request.buildArgs, platform, ignoresSource: (src) => ignore.ignoresSource(src) });
    lint.fileChecks();
    const plan = planBuild(parsed, request.buildArgs, request.target, platform);
    const source = new ImageSource(store, { registry: request.registry, platform });
    for (const stage of request.target ? plan.needed : plan.stages) {
      const base = plan.bases[stage.index]!;
      const parent = plan.stages.find((s) => s.index < stage.index && s.name === base.toLowerCase());
      if (parent) lint.stageChecks(stage.index, { parent: parent.index });
      else if (base === 'scratch') lint.stageChecks(stage.index, {});
      else {
        const opts = { platform: plan.platforms[stage.index] };
        const config = source.has(base, opts) ? (await source.resolve(base, opts)).config : (await source.remote(base, opts))?.config;
        const expected = plan.platforms[stage.index] ?? platform ?? hostPlatform();
        lint.stageChecks(stage.index, { image: config?.config, name: base, ...(config ? { platform: { os: config.os, architecture: config.architecture }, expected } : {}) });
      }
    }
    lint.hygieneChecks(plan.stages, plan.bases);
    await contextFileRules({ stages: plan.stages, bases: plan.bases, context: contextFiles(contextDir, ignore), linter: lint.linter });
    outcome.error = lint.linter.failure();
  } catch (err) {
    if (!(err instanceof TsbuildError)) throw err;
    outcome.error = err;
  } finally {
    store.cleanup();
  }
  outcome.warnings = lint?.linter.warnings ?? [];
  return outcome;
}

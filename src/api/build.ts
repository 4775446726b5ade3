// The library's build(): the CLI's `tsbuild build`, typed, with progress as events and a result per step.
import type { OutputSpec, RegistryOutput } from '../archive/output-spec.js';
import { build as runBuild } from '../builder/builder.js';
import type { BuildOptions } from '../builder/options.js';
import { parsePlatform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import { EventProgress, QuietProgress, TeeProgress, type BuildEvent, type CacheMiss, type Progress } from '../progress/progress.js';
import { Store, defaultRoot } from '../store/store.js';
import { UsageError } from '../errors.js';

/**
 * What to build, as `tsbuild build` is told it: each option is the flag of the same name, typed.
 * The store is `root` (default /var/lib/tsbuild, or TSBUILD_ROOT), as `--root` is.
 */
export interface BuildRequest extends Omit<BuildOptions, 'store' | 'contextDir' | 'dockerfile' | 'platform' | 'progress'> {
  /** The build context directory (the CLI's CONTEXT). */
  context: string;
  /** -f: the Dockerfile (default <context>/Dockerfile). */
  file?: string;
  /** --platform, as `os/arch[/variant]`. */
  platform?: string;
  /** --root: the store (default TSBUILD_ROOT, else /var/lib/tsbuild). */
  root?: string;
  /** -o: where the image goes besides the store (`type=docker,dest=app.tar`...), as a spec string or parsed. */
  output?: string | OutputSpec | RegistryOutput;
  /** --push: push every tag once built. */
  push?: boolean;
  /** Every progress event, as `--progress=rawjson` carries them (a log's bytes as a Buffer). */
  onEvent?: (event: BuildEvent) => void;
}

/** One step of the build, as it went. */
export interface StepOutcome {
  /** BuildKit's step number (`#5`). */
  id: number;
  /** Its name as progress shows it: `[2/3] RUN make`. */
  name: string;
  /** From the build cache; else it ran, and `miss` says why. */
  cached: boolean;
  miss?: CacheMiss;
  seconds: number;
}

export interface BuildOutcome {
  /** The image ID: its config's digest. */
  imageId: string;
  /** The image's manifest digest: the registry's when it was pushed, else that of the manifest the store keeps (and `tsbuild save` writes). */
  digest: string;
  tags: string[];
  /** Each step (the FROM lines and `[internal]` ones too), in the order they started. */
  steps: StepOutcome[];
  /** The names pushed, each with the digest the registry gave. */
  pushed: Array<{ name: string; digest: string }>;
}

/** Collects each step's outcome from the progress events. */
class StepOutcomes extends EventProgress {
  readonly steps = new Map<number, StepOutcome>();
  constructor() {
    super((e) => {
      if (e.type === 'step') this.steps.set(e.id, { id: e.id, name: e.name, cached: false, seconds: 0 });
      const step = 'id' in e ? this.steps.get(e.id) : undefined;
      if (!step) return;
      if (e.type === 'cache-miss') {
        const { type: _t, id: _i, ...miss } = e;
        step.miss = miss;
      } else if (e.type === 'done') Object.assign(step, { cached: e.cached, seconds: e.duration });
    });
  }
}

/**
 * Builds an image into the store, then writes it where `output` says and pushes it with `push`:
 * what `tsbuild build` does. Errors are tsbuild's typed errors (errors.ts); a Dockerfile's carry
 * its location. The store must be one this process may mount in: run as root (the CLI enters a
 * user namespace of its own for other users).
 */
export async function build(request: BuildRequest): Promise<BuildOutcome> {
  const store = Store.open(request.root ?? defaultRoot());
  try {
    return await buildInStore(store, request);
  } finally {
    store.cleanup();
  }
}

/** build() in an open store, shown on `display` too (the CLI's progress). */
export async function buildInStore(store: Store, request: BuildRequest, display: Progress = new QuietProgress()): Promise<BuildOutcome> {
  const { context, file, platform, root: _root, output, push, onEvent, ...options } = request;
  const tags = options.tags ?? [];
  for (const t of tags) parseReference(t); // a bad tag fails before the build, as in Docker
  if (push && tags.length === 0) throw new UsageError('--push needs a name to push to: give -t NAME[:TAG]');
  const spec = typeof output === 'string' ? (await import('../archive/output-spec.js')).parseOutputSpec(output) : output;
  const archive = spec?.type === 'registry' ? undefined : spec;
  for (const n of archive?.names ?? []) parseReference(n); // as -t: a bad name fails before the build
  const pushTo = [...(spec?.type === 'registry' ? spec.names : []), ...(push ? tags : [])].map((n) => parseReference(n));
  const outcomes = new StepOutcomes();
  const progress = new TeeProgress([display, outcomes, ...(onEvent ? [new EventProgress(onEvent)] : [])]);
  const result = await runBuild({ ...options, store, contextDir: context, dockerfile: file, platform: platform ? parsePlatform(platform) : undefined, progress });
  if (archive) {
    const { exportImage } = await import('../archive/export.js');
    const done = await exportImage(store, result.imageId, archive, archive.names ?? tags, options.jobs);
    progress.info(done === 'unchanged' ? `${archive.dest} already holds this image: unchanged` : `exported to ${archive.dest === '-' ? 'standard output' : archive.dest}`);
  }
  const pushed: BuildOutcome['pushed'] = [];
  for (const ref of pushTo) {
    const registrySpec = spec?.type === 'registry' ? spec : undefined;
    const { pushStored } = await import('../registry/push-stored.js');
    const { digest } = await pushStored(store, result.imageId, ref, {
      registry: options.registry,
      compression: registrySpec?.compression,
      compressionLevel: registrySpec?.level,
      ociMediaTypes: registrySpec?.mediaTypes === 'oci',
    });
    pushed.push({ name: `${ref.domain}/${ref.path}:${ref.tag}`, digest });
    progress.info(`pushing ${ref.domain}/${ref.path}:${ref.tag} with digest ${digest} done`);
  }
  return { imageId: result.imageId, digest: pushed[0]?.digest ?? result.manifestDigest, tags: result.tags, steps: [...outcomes.steps.values()], pushed };
}

// The build's --cache-from imports (before the first step) and --cache-to exports (after the image), each a step of its own.
// src/remote-cache (and the registry client under it) loads only for a build that names a cache:
// a local build, cached or not, never initialises it.
import type { BuiltStep } from '../remote-cache/export.js';
import type { CacheSource, ImportedCache } from '../remote-cache/imported.js';
import type { LayerMeta } from '../store/layers.js';
import type { BuildRun } from './stage-runner.js';

/**
 * Reads every --cache-from source, each as a step (`importing cache manifest from REF`). A source
 * that cannot be read is a warning, as in BuildKit: the build goes on without it.
 */
export async function importCaches(run: BuildRun, work: () => string): Promise<ImportedCache | undefined> {
  const specs = run.options.cacheFrom ?? [];
  if (specs.length === 0) return undefined;
  const [{ loadCacheSource }, { ImportedCache }] = await Promise.all([import('../remote-cache/load.js'), import('../remote-cache/imported.js')]);
  const sources: CacheSource[] = [];
  for (const spec of specs) {
    const id = ++run.steps;
    const started = Date.now();
    const name = spec.type === 'registry' ? spec.ref : `local:${spec.src}`;
    run.progress.step(id, `importing cache manifest from ${name}`);
    try {
      sources.push(await loadCacheSource(spec, run.options.registry ?? {}));
      run.progress.done(id, (Date.now() - started) / 1000, false);
    } catch (err) {
      run.progress.failed(id, (err as Error).message);
      run.progress.warning(`cache import from ${name} failed: ${(err as Error).message}`);
    }
  }
  return new ImportedCache(run.options.store, sources, work());
}

/** The inline cache value for the image config, when --cache-to type=inline asks for it. */
export async function inlineCache(run: BuildRun, built: readonly BuiltStep[], final: readonly LayerMeta[]): Promise<string | undefined> {
  if (!(run.options.cacheTo ?? []).some((s) => s.type === 'inline')) return undefined;
  const [{ inlineCacheValue }, { stepsFor }] = await Promise.all([import('../remote-cache/config.js'), import('../remote-cache/export.js')]);
  return inlineCacheValue(stepsFor('min', built, final).map((s) => ({ key: s.key, top: s.layers.length - 1, createdBy: s.createdBy, createdAt: s.layers.at(-1)?.created })));
}

/** Exports the cache to every registry and local --cache-to, each as a step; a failure fails the build unless ignore-error=true. */
export async function exportCaches(run: BuildRun, built: readonly BuiltStep[], final: readonly LayerMeta[]): Promise<void> {
  const specs = (run.options.cacheTo ?? []).filter((s) => s.type !== 'inline');
  if (specs.length === 0) return;
  const { exportCache, stepsFor } = await import('../remote-cache/export.js');
  for (const spec of specs) {
    const steps = stepsFor(spec.mode, built, final);
    const id = ++run.steps;
    const started = Date.now();
    run.progress.step(id, `exporting cache to ${spec.type === 'registry' ? spec.ref : `local:${spec.dest}`}`);
    try {
      const digest = await exportCache(run.options.store, spec, steps, run.options.registry ?? {}, run.imported);
      if (digest) run.progress.status(id, `writing cache manifest ${digest} done`);
      run.progress.done(id, (Date.now() - started) / 1000, false);
    } catch (err) {
      run.progress.failed(id, (err as Error).message);
      if (!spec.ignoreError) throw err;
      run.progress.warning(`cache export failed (ignore-error=true): ${(err as Error).message}`);
    }
  }
}

// Why a step missed the build cache: what it is built from now, against its last build.
import { looksSecret } from '../plan/secret-names.js';
import type { CacheMiss } from '../progress/progress.js';
import type { StepRecord } from '../store/step-records.js';
import { sha256Hex } from '../util/digest.js';

/** What the step is now, and how to read the sources lists of it and of its last build. */
export interface MissContext {
  /** Why the cache was not asked ('--no-cache', '--no-cache-filter build'), when it was not. */
  noCache?: string;
  /** The step is the first of its stage to make a layer: a different parent is a different base. */
  onBase: boolean;
  /** The stage's FROM, as written. */
  base: string;
  /** The sources list of the last build (its record's `files`), when kept. */
  previousFiles: () => string | undefined;
  /** This build's sources list. */
  currentFiles: () => string | undefined;
}

/** Material fields that are the instruction's own text (after expansion). */
const TEXT_FIELDS = new Set(['createdBy', 'argv', 'script', 'keyword', 'srcs', 'dest', 'destIsDir', 'inline', 'dir']);
/** Other fields, as a user would name the setting. */
const OPTION_NAMES: Record<string, string> = {
  user: 'USER',
  workdir: 'WORKDIR',
  network: '--network',
  security: '--security',
  chown: '--chown',
  mode: '--chmod',
  link: '--link',
  unpack: '--unpack',
  mounts: '--mount',
  proxies: 'the proxy build-args',
  downloads: 'the content of the URL it adds',
};
const SHOWN_FILES = 20;

/**
 * The slot of a step: the same context, Dockerfile, platform, stage and position make the same
 * slot, whose last build (store/step-records.ts) a miss is compared against.
 */
export function stepSlot(parts: { contextDir: string; dockerfile: string; platform?: string; stage: string; position: string }): string {
  return sha256Hex(JSON.stringify([parts.contextDir, parts.dockerfile, parts.platform ?? '', parts.stage, parts.position])).slice(0, 32);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A value a record must not hold as it is: its digest, which still tells a change. */
const hidden = (value: string) => `sha256:${sha256Hex(value)}`;

/**
 * What a step record keeps of a step's material and build args: values of names that look secret
 * (and of proxy settings, which may carry credentials) replaced by their digests, in the
 * environment, the args and the history text alike.
 */
export function redacted(material: Record<string, unknown>, args: Array<[string, string]>): { material: Record<string, unknown>; args: Array<[string, string]> } {
  const secret = new Set(args.filter(([k]) => looksSecret(k)).map(([k]) => k));
  const out: Record<string, unknown> = { ...material };
  if (Array.isArray(material.env)) {
    out.env = (material.env as unknown[]).map((e) => {
      if (typeof e !== 'string') return e;
      const eq = e.indexOf('=');
      const key = eq < 0 ? e : e.slice(0, eq);
      if (!looksSecret(key)) return e;
      secret.add(key);
      return `${key}=${hidden(e.slice(eq + 1))}`;
    });
  }
  if (Array.isArray(material.proxies)) out.proxies = (material.proxies as Array<[string, string]>).map(([k, v]) => [k, hidden(v)]);
  if (typeof material.createdBy === 'string' && secret.size > 0) {
    out.createdBy = material.createdBy.replace(/(^|\s)([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g, (m, pre: string, key: string, value: string) => (secret.has(key) ? `${pre}${key}=${hidden(value)}` : m));
  }
  return { material: out, args: args.map(([k, v]) => [k, looksSecret(k) ? hidden(v) : v]) };
}
const shortValue = (v: string) => (v.length > 40 ? `${v.slice(0, 39)}\u2026` : v);

/** Why `current` missed, compared with `previous`, the last build of the same step. */
export function explainMiss(previous: StepRecord | undefined, current: StepRecord, ctx: MissContext): CacheMiss {
  if (ctx.noCache) return { cause: 'no-cache', reason: ctx.noCache };
  if (!previous) return { cause: 'first-build', reason: 'no earlier build of this step' };
  if (previous.key === current.key) return { cause: 'removed', reason: 'its cached result is no longer in the store (pruned)' };
  if (previous.parent !== current.parent) {
    return ctx.onBase ? { cause: 'base-image', reason: `the base image changed (FROM ${ctx.base})` } : { cause: 'previous-step', reason: 'the step before it changed' };
  }
  const fields = [...new Set([...Object.keys(previous.material), ...Object.keys(current.material)])].filter((k) => !same(previous.material[k], current.material[k]));
  const arg = changedArg(previous, current);
  // an arg that changed explains a change of the text or environment it is expanded into
  if (arg && fields.some((f) => f !== 'sourcesKey')) return arg;
  const env = changedEnv(previous, current);
  if (env) return env;
  if (fields.includes('sourcesKey')) {
    // COPY --from: a stage's or image's top layer stands for its files
    const fromStage = String(current.material.sourcesKey).startsWith('sha256:') || current.material.sourcesKey === 'scratch';
    return changedFiles(ctx) ?? { cause: 'files', reason: fromStage ? 'the stage or image it copies from changed' : 'the files it copies changed' };
  }
  const mounts = fields.includes('mounts') ? changedMount(previous, current) : undefined;
  if (mounts) return mounts;
  if (fields.some((f) => TEXT_FIELDS.has(f))) return { cause: 'instruction', reason: 'instruction text changed' };
  const option = fields.find((f) => f !== 'env');
  if (option) {
    const name = OPTION_NAMES[option] ?? option;
    return { cause: 'option', name, reason: `${name} changed` };
  }
  if (previous.epoch !== current.epoch) return { cause: 'source-date-epoch', reason: 'SOURCE_DATE_EPOCH changed' };
  return { cause: 'instruction', reason: 'instruction text changed' };
}

function changedArg(previous: StepRecord, current: StepRecord): CacheMiss | undefined {
  const before = new Map(previous.args);
  const after = new Map(current.args);
  for (const name of new Set([...after.keys(), ...before.keys()])) {
    const a = before.get(name);
    const b = after.get(name);
    if (a === b) continue;
    if (looksSecret(name)) return { cause: 'build-arg', name, reason: `build-arg ${name} changed (value hidden)` }; // (records keep its digest only)
    const shown = (v: string | undefined) => (v === undefined ? 'unset' : shortValue(JSON.stringify(v).slice(1, -1)));
    return { cause: 'build-arg', name, ...(a !== undefined ? { before: a } : {}), ...(b !== undefined ? { after: b } : {}), reason: `build-arg ${name} changed (${shown(a)} -> ${shown(b)})` };
  }
  return undefined;
}

/** A RUN's environment (the image's ENV with the args, which changedArg tells of), by name. */
function changedEnv(previous: StepRecord, current: StepRecord): CacheMiss | undefined {
  const envOf = (r: StepRecord) => {
    const env = r.material.env;
    const map = new Map<string, string>();
    if (Array.isArray(env)) {
      for (const e of env) {
        if (typeof e !== 'string') continue;
        const eq = e.indexOf('=');
        map.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
      }
    }
    return map;
  };
  const before = envOf(previous);
  const after = envOf(current);
  const changed = [...new Set([...after.keys(), ...before.keys()])].filter((k) => before.get(k) !== after.get(k));
  if (changed.length === 0) return undefined;
  const more = changed.length > 1 ? ` (and ${changed.length - 1} more)` : '';
  return { cause: 'env', name: changed[0], reason: `ENV ${changed[0]} changed${more}` };
}

/** A bind mount whose target or content changed: `RUN --mount` of the context or another stage. */
function changedMount(previous: StepRecord, current: StepRecord): CacheMiss | undefined {
  const list = (r: StepRecord) => (Array.isArray(r.material.mounts) ? (r.material.mounts as Array<Record<string, unknown>>) : []);
  const before = list(previous);
  const after = list(current);
  if (before.length !== after.length) return undefined;
  for (let i = 0; i < after.length; i++) {
    const { content: a, ...restA } = before[i]!;
    const { content: b, ...restB } = after[i]!;
    if (!same(restA, restB)) return undefined;
    if (a !== b) {
      const target = String(after[i]!.target ?? '');
      return { cause: 'files', name: target, reason: `the files mounted at ${target} changed` };
    }
  }
  return undefined;
}

/** Parses a sources list (content-hash.ts: `path NUL type NUL mode NUL digest-or-target` a line) by path. */
function byPath(list: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of list.split('\n')) {
    if (line === '') continue;
    const nul = line.indexOf('\0');
    // the context's own files are listed as `/name` (COPY . .), or `./name`: named as in the context
    map.set(line.slice(0, nul).replace(/^\.?\/(?=.)/, ''), line.slice(nul + 1));
  }
  return map;
}

function changedFiles(ctx: MissContext): CacheMiss | undefined {
  const previous = ctx.previousFiles();
  const current = ctx.currentFiles();
  if (previous === undefined || current === undefined) return undefined;
  const before = byPath(previous);
  const after = byPath(current);
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  const isDir = (rest: string | undefined) => rest?.startsWith('d\0') === true;
  for (const [p, rest] of after) {
    const old = before.get(p);
    if (old === undefined) added.push(p);
    // a directory's line changes only with its mode: what it holds is told by its files' lines
    else if (old !== rest) changed.push(p);
  }
  for (const p of before.keys()) if (!after.has(p)) removed.push(p);
  // directories that only came or went with their files are not news
  const files = (list: string[], map: Map<string, string>) => (list.some((p) => !isDir(map.get(p))) ? list.filter((p) => !isDir(map.get(p))) : list);
  const c = files(changed, after);
  const a = files(added, after);
  const r = files(removed, before);
  const total = c.length + a.length + r.length;
  if (total === 0) return undefined;
  const [first, verb] = c.length > 0 ? [c[0]!, 'changed'] : a.length > 0 ? [a[0]!, 'added'] : [r[0]!, 'removed'];
  const more = total > 1 ? ` (and ${total - 1} more file${total > 2 ? 's' : ''})` : '';
  return {
    cause: 'files',
    reason: `${first === '' ? '.' : first} ${verb}${more}`,
    files: { changed: c.slice(0, SHOWN_FILES), added: a.slice(0, SHOWN_FILES), removed: r.slice(0, SHOWN_FILES), total },
  };
}

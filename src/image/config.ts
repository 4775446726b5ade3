// The OCI image config: types, BuildKit's serialisation, history times.
import type { Digest } from '../util/digest.js';

/** The runtime part of an image config (Docker's superset of OCI's). */
export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: unknown;
  OnBuild?: string[] | null;
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  author?: string;
  config: RuntimeConfig;
  created?: string;
  history: HistoryEntry[];
  os: string;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  variant?: string;
  /** BuildKit's inline cache (`moby.buildkit.cache.v0`), written only for an image built with --cache-to type=inline. */
  inlineCache?: string;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The config of `FROM scratch`, as BuildKit starts it: default PATH, working directory /. */
export function scratchConfig(): ImageConfig {
  return {
    architecture: hostArchitecture(),
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    history: [],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

const RUNTIME_KEYS: Array<keyof RuntimeConfig> = [
  'User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal',
  'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell',
];

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

const MAP_KEYS = new Set<keyof RuntimeConfig>(['ExposedPorts', 'Volumes', 'Labels']);

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) sorted[k] = o[k];
  return sorted;
}

/**
 * Serialises a config with a fixed key order (BuildKit's), so the same image always has the same
 * bytes and so the same ID. Unknown fields of a base image's config are dropped, as BuildKit does.
 */
export function serializeConfig(c: ImageConfig): Buffer {
  const runtime: Record<string, unknown> = {};
  for (const k of RUNTIME_KEYS) {
    const v = c.config[k];
    if (isEmpty(v)) continue; // Go's omitempty, as BuildKit's config struct has it
    // Go marshals maps with sorted keys; so do we, or the same image would get another ID.
    runtime[k] = MAP_KEYS.has(k) && v !== null ? sortKeys(v as Record<string, unknown>) : v;
  }
  if (runtime.OnBuild === undefined) runtime.OnBuild = null; // the one field BuildKit writes even when empty
  const ordered: Record<string, unknown> = { architecture: c.architecture };
  if (c.author) ordered.author = c.author;
  ordered.config = runtime;
  if (c.created) ordered.created = c.created;
  ordered.history = c.history.map((h) => {
    const e: Record<string, unknown> = {};
    if (h.created) e.created = h.created;
    if (h.created_by !== undefined) e.created_by = h.created_by;
    if (h.author) e.author = h.author;
    if (h.comment) e.comment = h.comment;
    if (h.empty_layer) e.empty_layer = true;
    return e;
  });
  ordered.os = c.os;
  ordered.rootfs = { type: 'layers', diff_ids: c.rootfs.diff_ids };
  if (c.variant) ordered.variant = c.variant;
  if (c.inlineCache) ordered['moby.buildkit.cache.v0'] = c.inlineCache;
  return Buffer.from(JSON.stringify(ordered));
}

/** Reads a config from JSON (any Docker or OCI producer), keeping what tsbuild understands. */
export function parseConfig(bytes: Buffer | string): ImageConfig {
  const raw = JSON.parse(bytes.toString()) as Record<string, unknown>;
  const rootfs = (raw.rootfs ?? {}) as { diff_ids?: Digest[] };
  const config = ((raw.config ?? raw.Config ?? {}) as RuntimeConfig) ?? {};
  return {
    architecture: typeof raw.architecture === 'string' ? raw.architecture : hostArchitecture(),
    author: typeof raw.author === 'string' ? raw.author : undefined,
    config: dropNulls(config),
    created: typeof raw.created === 'string' ? raw.created : undefined,
    history: Array.isArray(raw.history) ? (raw.history as HistoryEntry[]) : [],
    os: typeof raw.os === 'string' ? raw.os : 'linux',
    rootfs: { type: 'layers', diff_ids: Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [] },
    variant: typeof raw.variant === 'string' ? raw.variant : undefined,
  };
}

function dropNulls(c: RuntimeConfig): RuntimeConfig {
  const out: Record<string, unknown> = {};
  for (const k of RUNTIME_KEYS) {
    const v = (c as Record<string, unknown>)[k];
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out as RuntimeConfig;
}

/** Value of a `KEY=value` variable in an env list. */
export function envGet(env: readonly string[] | undefined, key: string): string | undefined {
  for (const kv of env ?? []) {
    const eq = kv.indexOf('=');
    if ((eq < 0 ? kv : kv.slice(0, eq)) === key) return eq < 0 ? '' : kv.slice(eq + 1);
  }
  return undefined;
}

/** A new env list with KEY set (replacing in place, or appended), as Docker orders it. */
export function envSet(env: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(env ?? [])];
  const i = out.findIndex((kv) => kv === key || kv.startsWith(`${key}=`));
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** The number of history entries that made a layer must equal the number of diff_ids. */
export function layerHistory(c: ImageConfig): HistoryEntry[] {
  return c.history.filter((h) => !h.empty_layer);
}

/**
 * Gives history entries left without a time (metadata-only steps of this build) one, as BuildKit's
 * exporter does (normalizeLayersAndHistory): the time of the newest layer-making entry before them,
 * or, before the build's first new layer, that layer's time (not the base image's). The image is as
 * old as its newest entry, or `epoch` (SOURCE_DATE_EPOCH). Layer-making entries keep their layer's
 * time, so a rebuild whose layers all come from the cache is the same image.
 */
export function settleHistoryTimes(c: ImageConfig, epoch?: string): ImageConfig {
  const firstOpen = c.history.findIndex((h) => !h.created);
  let fill = c.history.slice(firstOpen < 0 ? 0 : firstOpen).find((h) => h.created)?.created ?? c.history.filter((h) => h.created).at(-1)?.created;
  let afterOpen = false;
  const history = c.history.map((h) => {
    if (!h.created) {
      afterOpen = true;
      return { ...h, created: fill };
    }
    if (afterOpen) fill = h.created;
    return h;
  });
  const created = epoch ?? history.filter((h) => h.created).at(-1)?.created ?? c.created;
  return { ...c, history, created };
}

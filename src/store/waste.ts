// Where an image's bytes went: per layer what it adds, changes and removes, and what later layers
// throw away of it; the image's wasted space and efficiency as dive (wagoodman/dive) reports them.
import { cleanTarPath, readTar } from '../layer/tar-reader.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../fs/whiteout.js';
import type { ByteSink } from '../util/sink.js';
import type { Store } from './store.js';
import type { StoredImage } from './stored-image.js';
import { layerHistory } from '../image/config.js';

export interface FileSize {
  path: string;
  size: number;
}

export interface LayerWaste {
  /** Position in the image, from the bottom. */
  index: number;
  createdBy: string;
  /** Sum of the sizes of the files in the layer (what dive shows as its size). */
  size: number;
  /** Files (and symlinks, devices) new to the image, and ones an earlier layer had. */
  added: number;
  changed: number;
  /** Whiteouts: paths of earlier layers it deletes. */
  removed: number;
  /** Bytes of this layer's files that a later layer deletes or overwrites. */
  wasted: number;
  /** Its biggest files (empty ones left out). */
  largest: FileSize[];
}

export interface WasteReport {
  image: string;
  layers: LayerWaste[];
  /** Sum of the layers' sizes. */
  totalSize: number;
  /** dive's potential wasted space: every copy of a path found in more than one layer, summed. */
  wastedBytes: number;
  /** wastedBytes over the layers above the first (dive's userWastedPercent), 0 to 1. */
  userWastedRatio: number;
  /** dive's efficiency score: the smallest copy of each path over every copy of it, 0 to 1. */
  efficiency: number;
  /** Paths found in more than one layer, most space first (dive's inefficient files; those of 0 bytes left out). */
  inefficient: Array<{ path: string; count: number; size: number }>;
  /** The biggest files of the image as it runs (empty ones left out). */
  largest: Array<FileSize & { layer: number }>;
}

const TOP = 10;

interface Entry {
  path: string;
  kind: 'file' | 'dir' | 'whiteout' | 'opaque';
  size: number;
}

/** A producer's bytes as an async iterable, one chunk handed over at a time. */
async function* chunksOf(produce: (sink: ByteSink) => Promise<void>): AsyncGenerator<Buffer> {
  let pending: { chunk: Buffer; taken: () => void } | undefined;
  let wake: (() => void) | undefined;
  let done = false;
  let failure: unknown;
  const sink: ByteSink = { write: (chunk) => new Promise<void>((taken) => ((pending = { chunk, taken }), wake?.())) };
  produce(sink).then(
    () => ((done = true), wake?.()),
    (err: unknown) => ((failure = err), (done = true), wake?.()),
  );
  for (;;) {
    if (pending) {
      const { chunk, taken } = pending;
      pending = undefined;
      yield chunk;
      taken();
      continue;
    }
    if (done) {
      if (failure) throw failure;
      return;
    }
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
}

/** A layer's entries, the last of a path winning, whiteouts and opaque markers by the path they act on. */
async function layerEntries(store: Store, chainId: StoredImage['layers'][number]['chainId']): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  for await (const e of readTar(chunksOf((sink) => store.layers.writeTar(chainId, sink)))) {
    const path = cleanTarPath(e.path);
    if (path === '') continue;
    const slash = path.lastIndexOf('/');
    const dir = path.slice(0, slash + 1);
    const base = path.slice(slash + 1);
    if (base === OPAQUE_MARKER) entries.set(path, { path: dir.slice(0, -1), kind: 'opaque', size: 0 });
    else if (base.startsWith(WHITEOUT_PREFIX)) entries.set(path, { path: dir + base.slice(WHITEOUT_PREFIX.length), kind: 'whiteout', size: 0 });
    else entries.set(path, { path, kind: e.type === 'dir' ? 'dir' : 'file', size: e.type === 'file' ? e.size : 0 });
  }
  return entries;
}

/** Keeps the biggest few of what it is offered. */
function keepTop<T extends { size: number }>(top: T[], item: T): void {
  if (top.length === TOP && top[TOP - 1]!.size >= item.size) return;
  top.push(item);
  top.sort((a, b) => b.size - a.size);
  if (top.length > TOP) top.pop();
}

export interface WasteOptions {
  /** Only the layers from this index up (those below are neither read nor counted). */
  from?: number;
  /** Each file's bytes that layer `by` deletes or overwrites, which layer `from` put there. */
  onWaste?: (from: number, by: number, path: string, size: number) => void;
}

/**
 * Walks an image's layers bottom up, as overlayfs stacks them. dive's figures are dive's own
 * (filetree/efficiency.go): every leaf of each layer's tree (files, symlinks, empty directories,
 * whiteouts) is a copy of its path, sized by its tar header, a whiteout by what it hides of a
 * directory (a file's whiteout weighs 0); a path found more than once is inefficient, all its
 * copies wasted; the score is the sum of each path's smallest copy over the sum of all copies.
 */
export async function imageWaste(store: Store, img: Pick<StoredImage, 'id' | 'layers' | 'config'>, opts: WasteOptions = {}): Promise<WasteReport> {
  const history = layerHistory(img.config);
  /** The files of the image so far: size and the layer that put them there. */
  const live = new Map<string, { size: number; layer: number }>();
  const liveDirs = new Set<string>();
  const copies = new Map<string, { count: number; cumulative: number; min: number }>();
  const layers: LayerWaste[] = [];
  let current = 0;

  /** Removes what is at or below a path; earlier layers' bytes it held are wasted. Returns what a directory there held. */
  const drop = (path: string, below: boolean): number => {
    let held = 0;
    const prefix = `${path}/`;
    const gone = (p: string, v: { size: number; layer: number }) => {
      layers[v.layer]!.wasted += v.size;
      opts.onWaste?.(v.layer, current, `/${p}`, v.size);
      held += v.size;
      live.delete(p);
    };
    if (!below) {
      const v = live.get(path);
      if (v) gone(path, v);
    }
    if (liveDirs.has(path)) {
      for (const [p, v] of live) if (p.startsWith(prefix)) gone(p, v);
      for (const d of liveDirs) if (d.startsWith(prefix) || (!below && d === path)) liveDirs.delete(d);
    }
    return held;
  };
  const copy = (path: string, size: number) => {
    const c = copies.get(path) ?? { count: 0, cumulative: 0, min: size };
    c.count++;
    c.cumulative += size;
    c.min = Math.min(c.min, size);
    copies.set(path, c);
  };

  for (const [index, meta] of img.layers.entries()) {
    current = index;
    const layer: LayerWaste = { index, createdBy: history[index]?.created_by ?? '', size: 0, added: 0, changed: 0, removed: 0, wasted: 0, largest: [] };
    layers.push(layer);
    if (index < (opts.from ?? 0)) continue;
    const entries = [...(await layerEntries(store, meta.chainId)).values()];
    // a directory with anything below it in this layer is not a leaf of its tree
    const parents = new Set<string>();
    for (const e of entries) {
      if (e.kind === 'opaque') parents.add(e.path); // its marker is an entry below it
      for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) parents.add(e.path.slice(0, i));
    }
    // what it deletes of the layers below, first: its own entries are never what it deletes
    for (const e of entries) {
      if (e.kind === 'opaque') drop(e.path, true);
      if (e.kind !== 'whiteout') continue;
      layer.removed++;
      const wasDir = liveDirs.has(e.path);
      const held = drop(e.path, false);
      copy(e.path, wasDir ? held : 0);
    }
    for (const e of entries) {
      if (e.kind === 'whiteout' || e.kind === 'opaque') continue;
      if (e.kind === 'dir') {
        if (live.has(e.path)) drop(e.path, false); // a directory where a file was
        liveDirs.add(e.path);
        if (!parents.has(e.path)) copy(e.path, 0);
        continue;
      }
      const before = live.get(e.path);
      if (before) {
        layer.changed++;
        drop(e.path, false);
      } else {
        layer.added++;
        if (liveDirs.has(e.path)) drop(e.path, false); // a file where a directory was
      }
      live.set(e.path, { size: e.size, layer: index });
      layer.size += e.size;
      if (e.size > 0) keepTop(layer.largest, { path: `/${e.path}`, size: e.size });
      copy(e.path, e.size);
    }
  }

  let minimum = 0;
  let discovered = 0;
  let wastedBytes = 0;
  const inefficient: WasteReport['inefficient'] = [];
  for (const [path, c] of copies) {
    minimum += c.min;
    discovered += c.cumulative;
    if (c.count < 2) continue;
    wastedBytes += c.cumulative;
    if (c.cumulative > 0) inefficient.push({ path: `/${path}`, count: c.count, size: c.cumulative });
  }
  inefficient.sort((a, b) => b.size - a.size || a.path.localeCompare(b.path));
  const largest: WasteReport['largest'] = [];
  for (const [path, v] of live) if (v.size > 0) keepTop(largest, { path: `/${path}`, size: v.size, layer: v.layer });
  const totalSize = layers.reduce((n, l) => n + l.size, 0);
  const userSize = totalSize - (layers[0]?.size ?? 0);
  return {
    image: img.id,
    layers,
    totalSize,
    wastedBytes,
    userWastedRatio: userSize > 0 ? wastedBytes / userSize : 0,
    efficiency: discovered === 0 ? 1 : minimum / discovered,
    inefficient,
    largest,
  };
}

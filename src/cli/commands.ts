import { build } from '../build/builder.js';
import { TsbuildError, UsageError } from '../errors.js';
import { makeProgress, type ProgressMode } from '../progress/progress.js';
import { parseDuration } from '../dockerfile/instructions.js';
import { parseSize } from '../dockerfile/run-mount.js';
import { fsck, prune, usage, type UsageRow } from '../store/gc.js';
import { familiarName, familiarRepository, parseReference } from '../image/reference.js';
import { layerHistory } from '../image/config.js';
import { loadArchive } from '../output/archive-reader.js';
import { writeImageArchive, type ArchiveImage } from '../output/archive-writer.js';
import { importRootfs } from '../output/rootfs-import.js';
import { parseOutputSpec } from '../output/output-spec.js';
import { outputUnchanged, recordOutput } from '../output/unchanged-output.js';
import { removeImage } from '../store/remove-image.js';
import { getImage, listImages, type StoredImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';
import { ellipsis, humanAgo, humanSize, shortId, table } from './format.js';

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  signal?: AbortSignal;
}

export interface BuildFlags {
  tag: string[];
  file?: string;
  output?: string;
  quiet?: boolean;
  buildArg: string[];
  target?: string;
  secret: string[];
  /** commander's --no-cache: false when given. */
  cache: boolean;
  progress: string;
  jobs?: number;
  /** --no-cache-filter values (commander names a --no- option after what it negates). */
  cacheFilter: string[];
}

/** `--secret id=ID,src=PATH` (or `source=`), `id=ID,env=VAR`, or `id=ID` (the variable ID). */
function parseSecrets(list: string[]): Record<string, { src?: string; env?: string }> {
  const out: Record<string, { src?: string; env?: string }> = {};
  for (const item of list) {
    const kv = Object.fromEntries(item.split(',').map((f) => [f.slice(0, f.indexOf('=') < 0 ? f.length : f.indexOf('=')), f.includes('=') ? f.slice(f.indexOf('=') + 1) : '']));
    const id = kv.id;
    if (!id) throw new UsageError(`invalid --secret "${item}": expected id=ID,src=PATH or id=ID,env=VAR`);
    const src = kv.src ?? kv.source;
    if (src !== undefined) out[id] = { src };
    else out[id] = { env: kv.env ?? id };
  }
  return out;
}

function parseBuildArgs(list: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid --build-arg "${item}": expected KEY=VALUE or KEY`);
    if (eq < 0) out[item] = undefined;
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function imageSize(img: StoredImage): number {
  return img.layers.reduce((n, l) => n + l.contentSize, 0);
}

export async function buildCommand(store: Store, context: string, flags: BuildFlags, io: Io): Promise<void> {
  for (const t of flags.tag) parseReference(t); // a bad tag fails before the build, as in Docker
  const modes = ['auto', 'tty', 'plain', 'quiet', 'rawjson'];
  if (!modes.includes(flags.progress)) throw new UsageError(`invalid --progress "${flags.progress}": one of ${modes.join(', ')}`);
  const output = flags.output !== undefined ? { spec: parseOutputSpec(flags.output) } : undefined;
  for (const n of output?.spec.names ?? []) parseReference(n); // as -t: a bad name fails before the build
  if (output?.spec.dest === '-') {
    if (flags.quiet) throw new UsageError('-q prints the image ID on standard output, where -o dest=- writes the archive: use one of them');
    if (process.stdout.isTTY) throw new UsageError('refusing to write an image archive to a terminal: redirect standard output, or give dest=FILE');
  }
  const progress = makeProgress(flags.quiet ? 'quiet' : (flags.progress as ProgressMode), process.stderr);
  const result = await build({
    store,
    contextDir: context,
    dockerfile: flags.file,
    tags: flags.tag,
    buildArgs: parseBuildArgs(flags.buildArg),
    target: flags.target,
    secrets: parseSecrets(flags.secret),
    noCache: flags.cache === false,
    jobs: flags.jobs,
    noCacheFilter: flags.cacheFilter,
    progress,
    signal: io.signal,
  });
  if (output) {
    const names = output.spec.names ?? flags.tag;
    const key = JSON.stringify({ id: result.imageId, names, type: output.spec.type, compression: output.spec.compression ?? null, mediaTypes: output.spec.mediaTypes });
    const dest = output.spec.dest;
    if (dest !== '-' && outputUnchanged(store, dest, key)) {
      progress.info(`${dest} already holds this image: unchanged`);
    } else {
      await store.inUse(async () => {
        const image = getImage(store, result.imageId);
        await writeImageArchive(store, [{ image, names }], dest, { format: output.spec.type, compression: output.spec.compression, mediaTypes: output.spec.mediaTypes, jobs: flags.jobs });
        if (dest !== '-') recordOutput(store, dest, key);
      });
      progress.info(`exported to ${dest === '-' ? 'standard output' : dest}`);
    }
  }
  if (flags.quiet) io.out(result.imageId);
}

export async function loadCommand(store: Store, file: string, quiet: boolean, io: Io): Promise<void> {
  const loaded = await loadArchive(store, file);
  if (quiet) return;
  for (const img of loaded) {
    if (img.tags.length === 0) io.out(`Loaded image ID: ${img.id}`);
    for (const t of img.tags) io.out(`Loaded image: ${familiarName(parseReference(t))}`);
  }
}

export async function importCommand(store: Store, file: string, name: string, io: Io): Promise<void> {
  io.out(await importRootfs(store, file, name));
}

export function imagesCommand(store: Store, io: Io): void {
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  const images = listImages(store).sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''));
  for (const img of images) {
    const cells = (repo: string, tag: string) => [repo, tag, shortId(img.id), humanAgo(img.config.created), humanSize(imageSize(img))];
    if (img.tags.length === 0) rows.push(cells('<none>', '<none>'));
    for (const t of img.tags) {
      const ref = parseReference(t);
      rows.push(cells(familiarRepository(ref), ref.tag ?? '<none>'));
    }
  }
  io.out(table(rows));
}

export function historyCommand(store: Store, name: string, noTrunc: boolean, io: Io): void {
  const img = getImage(store, name);
  const layers = [...img.layers];
  const sized = img.config.history.map((h) => ({ h, size: h.empty_layer ? 0 : (layers.shift()?.contentSize ?? 0) }));
  if (layerHistory(img.config).length === 0 && img.config.history.length === 0) {
    img.layers.forEach((l) => sized.push({ h: {}, size: l.contentSize }));
  }
  const rows = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']];
  sized.reverse().forEach(({ h, size }, i) => {
    const by = h.created_by ?? '';
    rows.push([
      i === 0 ? (noTrunc ? img.id : shortId(img.id)) : '<missing>',
      humanAgo(h.created),
      noTrunc ? by : ellipsis(by, 45),
      humanSize(size),
      noTrunc ? (h.comment ?? '') : ellipsis(h.comment ?? '', 45),
    ]);
  });
  io.out(table(rows));
}

export function inspectCommand(store: Store, names: string[], io: Io): void {
  const out = names.map((n) => {
    const img = getImage(store, n);
    return {
      Id: img.id,
      RepoTags: img.tags.map((t) => familiarName(parseReference(t))),
      Created: img.config.created,
      Architecture: img.config.architecture,
      Os: img.config.os,
      Size: imageSize(img),
      Config: img.config.config,
      RootFS: { Type: 'layers', Layers: img.config.rootfs.diff_ids },
      History: img.config.history,
      Manifest: { Digest: img.manifestDigest, ...img.manifest },
      Layers: img.layers.map((l) => ({ DiffID: l.diffId, ChainID: l.chainId, Digest: l.diffId, Size: l.size, ContentSize: l.contentSize })),
    };
  });
  io.out(JSON.stringify(out, null, 4));
}

export async function saveCommand(store: Store, names: string[], output: string | undefined, io: Io): Promise<void> {
  if (!output) throw new UsageError('tsbuild save needs -o FILE (writing an archive to a terminal is refused)');
  const byId = new Map<string, ArchiveImage>();
  for (const n of names) {
    const image = getImage(store, n);
    const entry = byId.get(image.id) ?? { image, names: [] };
    if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(n)) entry.names.push(n);
    else entry.names.push(...image.tags);
    byId.set(image.id, entry);
  }
  await store.inUse(() => writeImageArchive(store, [...byId.values()], output));
  io.err(`saved ${names.join(', ')} to ${output}`);
}

export async function rmiCommand(store: Store, names: string[], force: boolean, io: Io): Promise<void> {
  for (const n of names) {
    const report = await removeImage(store, n, force);
    for (const t of report.untagged) io.out(`Untagged: ${t}`);
    for (const d of report.deleted) io.out(`Deleted: ${d}`);
  }
}

export function dfCommand(store: Store, io: Io): void {
  const u = usage(store);
  const rows = [['TYPE', 'TOTAL', 'SIZE', 'RECLAIMABLE', 'WITH --all']];
  const named: Array<[string, UsageRow]> = [['Images', u.images], ['Layers', u.layers], ['Build Cache', u.cache], ['Compressed Layers', u.compressed]];
  for (const [name, r] of named) rows.push([name, String(r.count), humanSize(r.size), humanSize(r.reclaimable), humanSize(r.reclaimableAll)]);
  io.out(table(rows));
  const sum = (k: 'reclaimable' | 'reclaimableAll') => named.reduce((n, [, r]) => n + r[k], 0);
  io.out(`\`prune\` would free ${humanSize(sum('reclaimable'))}; \`prune --all\` ${humanSize(sum('reclaimableAll'))}`);
}

/** Docker's `--filter until=24h` (Go durations) and `--keep-storage 10GB` (sizes). */
export async function pruneCommand(store: Store, flags: { all?: boolean; filter: string[]; keepStorage?: string }, io: Io): Promise<void> {
  let olderThanMs: number | undefined;
  for (const f of flags.filter) {
    const m = /^until=(.+)$/.exec(f);
    if (!m) throw new UsageError(`invalid filter "${f}": only until=DURATION is supported`);
    try {
      olderThanMs = parseDuration(m[1]!) / 1e6;
    } catch (err) {
      throw new UsageError(`invalid filter "${f}": ${(err as Error).message}`);
    }
  }
  let keepStorage: number | undefined;
  if (flags.keepStorage !== undefined) {
    keepStorage = parseSize(flags.keepStorage.replace(/B$/i, ''));
    if (keepStorage === undefined) throw new UsageError(`invalid --keep-storage "${flags.keepStorage}"`);
  }
  const r = await prune(store, { all: flags.all, olderThanMs, keepStorage });
  io.out(`Deleted images: ${r.images}, build cache entries: ${r.cacheEntries}, layers: ${r.layers}, blobs: ${r.blobs}`);
  io.out(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
}

export async function fsckCommand(store: Store, io: Io): Promise<void> {
  const problems = await store.collecting(() => fsck(store)); // no prune or rmi under it
  for (const p of problems) io.err(p);
  if (problems.length > 0) throw new TsbuildError(`fsck: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${store.root}`);
  io.out(`fsck: ${store.root} is consistent`);
}

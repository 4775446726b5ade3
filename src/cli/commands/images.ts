// The `images`, `history` and `inspect` commands.
import { layerHistory } from '../../image/config.js';
import { familiarName, familiarRepository, parseReference } from '../../image/reference.js';
import { getImage, imageSize, listImageSummaries } from '../../store/stored-image.js';
import type { Store } from '../../store/store.js';
import { ellipsis, humanAgo, shortId, table } from '../format.js';
import { humanSize } from '../../util/units.js';
import type { Io } from '../io.js';

export function imagesCommand(store: Store, io: Io): void {
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  // newest first; ISO times sort as strings (localeCompare would load ICU's collator: 8 ms)
  const images = listImageSummaries(store).sort((a, b) => ((b.created ?? '') > (a.created ?? '') ? 1 : (b.created ?? '') < (a.created ?? '') ? -1 : 0));
  for (const img of images) {
    const cells = (repo: string, tag: string) => [repo, tag, shortId(img.id), humanAgo(img.created), humanSize(img.size)];
    if (img.tags.length === 0) {
      // pulled by digest only: its repository, as docker images shows it, without a tag
      const repos = [...new Set(img.repoDigests.map((d) => familiarRepository(parseReference(d))))];
      if (repos.length === 0) rows.push(cells('<none>', '<none>'));
      for (const r of repos) rows.push(cells(r, '<none>'));
    }
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
      RepoDigests: img.repoDigests.map((d) => familiarName(parseReference(d))),
      Created: img.config.created,
      Architecture: img.config.architecture,
      Os: img.config.os,
      Size: imageSize(img.layers),
      Config: img.config.config,
      RootFS: { Type: 'layers', Layers: img.config.rootfs.diff_ids },
      History: img.config.history,
      Manifest: { Digest: img.manifestDigest, ...img.manifest },
      Layers: img.layers.map((l) => ({ DiffID: l.diffId, ChainID: l.chainId, Digest: l.diffId, Size: l.size, ContentSize: l.contentSize })),
    };
  });
  io.out(JSON.stringify(out, null, 4));
}

/**
 * `history --waste`: per layer its size, the files it adds, changes and removes, and the bytes of
 * it a later layer deletes or overwrites; the image's biggest files, and its wasted space and
 * efficiency as dive reports them (store/waste.ts). `--format json` gives the same as JSON.
 */
export async function historyWasteCommand(store: Store, name: string, format: string | undefined, noTrunc: boolean, io: Io): Promise<void> {
  const { imageWaste } = await import('../../store/waste.js');
  const report = await imageWaste(store, getImage(store, name));
  if (format === 'json') {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const rows = [['LAYER', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED', 'WASTED', 'CREATED BY']];
  for (const l of report.layers) {
    rows.push([String(l.index), humanSize(l.size), String(l.added), String(l.changed), String(l.removed), humanSize(l.wasted), noTrunc ? l.createdBy : ellipsis(l.createdBy, 45)]);
  }
  const largest = [['SIZE', 'LAYER', 'PATH'], ...report.largest.map((f) => [humanSize(f.size), String(f.layer), f.path])];
  const inefficient = [['COUNT', 'SPACE', 'PATH'], ...report.inefficient.slice(0, 10).map((f) => [String(f.count), humanSize(f.size), f.path])];
  io.out(
    [
      table(rows),
      '',
      'Largest files:',
      table(largest),
      '',
      'Files in more than one layer (each copy counts, as dive counts them):',
      report.inefficient.length > 0 ? table(inefficient) : 'none',
      '',
      `Total image size: ${humanSize(report.totalSize)}`,
      `Potential wasted space: ${humanSize(report.wastedBytes)} (${(100 * report.userWastedRatio).toFixed(1)}% of the layers above the first)`,
      `Image efficiency score: ${(100 * report.efficiency).toFixed(1)} %`,
    ].join('\n'),
  );
}

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

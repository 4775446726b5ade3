import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../errors.js';
import { applyLayer } from '../layer/apply.js';
import { writeLayerTar } from '../layer/diff.js';
import { readTar } from '../layer/tar-reader.js';
import { hexOf, type Digest } from '../util/digest.js';
import type { ByteSink } from '../util/sink.js';
import { tempSibling, writeFileAtomic } from './atomic.js';
import type { BlobStore } from './blobs.js';

/** What the store knows of an extracted layer, in layers/<chain-id hex>/meta.json. */
export interface LayerMeta {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  /** Sum of file sizes, as `docker history` reports. */
  contentSize: number;
  /**
   * A blob holding the layer tar: as imported (load, import), or as COPY wrote it. RUN layers have
   * none: their tar is regenerated from diff/, which reproduces it byte for byte. A layer with a blob
   * may not be extracted yet: diff/ is made from the blob when a step first needs it.
   */
  blob?: Digest;
  /** Name of the short link in l/ that points at diff/. */
  link: string;
}

/**
 * Extracted layers keyed by chain ID, each an overlay lowerdir in overlay form, plus short links
 * (l/<16 hex>) so that a mount of 100+ layers fits in the kernel's one page of options.
 */
export class LayerStore {
  constructor(
    readonly dir: string,
    readonly linksDir: string,
    private readonly blobs: BlobStore,
  ) {}

  layerDir(chainId: Digest): string {
    return path.join(this.dir, hexOf(chainId));
  }

  diffDir(chainId: Digest): string {
    return path.join(this.layerDir(chainId), 'diff');
  }

  has(chainId: Digest): boolean {
    return existsSync(path.join(this.layerDir(chainId), 'meta.json'));
  }

  meta(chainId: Digest): LayerMeta {
    const file = path.join(this.layerDir(chainId), 'meta.json');
    let meta: LayerMeta;
    try {
      meta = JSON.parse(readFileSync(file, 'utf8')) as LayerMeta;
    } catch (err) {
      throw new IntegrityError(`layer ${chainId} is missing from the store`, { cause: err });
    }
    if (meta.chainId !== chainId) throw new IntegrityError(`layer ${chainId}: meta.json names ${meta.chainId}`);
    return meta;
  }

  static linkName(chainId: Digest): string {
    return hexOf(chainId).slice(0, 16);
  }

  /**
   * Moves a finished layer directory (holding diff/) into the store under its chain ID. If another
   * build committed the same layer first, ours is dropped: content addressing makes them equal.
   */
  commit(staged: string, meta: Omit<LayerMeta, 'link'>): LayerMeta {
    const full: LayerMeta = { ...meta, link: LayerStore.linkName(meta.chainId) };
    const target = this.layerDir(meta.chainId);
    if (this.has(meta.chainId)) {
      rmSync(staged, { recursive: true, force: true });
      return this.meta(meta.chainId);
    }
    writeFileAtomic(path.join(staged, 'meta.json'), JSON.stringify(full));
    if (existsSync(target)) rmSync(target, { recursive: true, force: true }); // a leftover without meta.json
    renameSync(staged, target);
    this.ensureLink(full);
    return full;
  }

  ensureLink(meta: LayerMeta): void {
    const link = path.join(this.linksDir, meta.link);
    if (existsSync(link)) return;
    const tmp = tempSibling(link);
    symlinkSync(path.join('..', path.basename(this.dir), hexOf(meta.chainId), 'diff'), tmp);
    renameSync(tmp, link);
  }

  /** Makes sure diff/ exists (extracting the blob the first time), so the layer can be mounted or read. */
  async ensureExtracted(chainId: Digest, tmpDir: string): Promise<string> {
    const diff = this.diffDir(chainId);
    if (existsSync(diff)) return diff;
    const meta = this.meta(chainId);
    if (!meta.blob) throw new IntegrityError(`layer ${chainId} has neither files nor a blob in the store`);
    mkdirSync(tmpDir, { recursive: true });
    const staged = path.join(tmpDir, `extract-${hexOf(chainId)}`);
    rmSync(staged, { recursive: true, force: true });
    mkdirSync(staged);
    await applyLayer(readTar(createReadStream(this.blobs.path(meta.blob))), staged);
    if (!existsSync(diff)) renameSync(staged, diff);
    else rmSync(staged, { recursive: true, force: true }); // another process was first
    return diff;
  }

  /** Streams the layer tar into a sink and checks it against the diffID (after the last byte). */
  async writeTar(chainId: Digest, sink: ByteSink): Promise<void> {
    const meta = this.meta(chainId);
    if (meta.blob) {
      await this.blobs.copyTo(meta.blob, sink);
      return;
    }
    const result = await writeLayerTar(this.diffDir(chainId), sink);
    if (result.diffId !== meta.diffId || result.size !== meta.size) {
      throw new IntegrityError(`layer ${chainId} in the store is corrupt: its files no longer give diffID ${meta.diffId}`);
    }
  }

  /** Removes a layer; it is first moved aside, so a crash never leaves half a layer under its name. */
  remove(chainId: Digest, trashDir: string): void {
    const meta = this.has(chainId) ? this.meta(chainId) : undefined;
    if (meta) rmSync(path.join(this.linksDir, meta.link), { force: true });
    const dir = this.layerDir(chainId);
    if (!existsSync(dir)) return;
    mkdirSync(trashDir, { recursive: true });
    const aside = path.join(trashDir, hexOf(chainId));
    renameSync(dir, aside);
    rmSync(aside, { recursive: true, force: true });
  }
}

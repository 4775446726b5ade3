// Layers by chain ID: their directories, records and short links.
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { errnoCode, IntegrityError } from '../errors.js';
import type { ParentAttrs } from '../layer/apply.js';
import { DigestCounter, hexOf, type Digest } from '../util/digest.js';
import type { ByteSink } from '../util/sink.js';
import type { ErofsImage } from '../fs/erofs-reader.js';
import type { LayerFiles } from '../fs/rootfs-view.js';
import { readJsonIfAny, tempSibling, writeFileAtomic } from './atomic.js';
import type { BlobStore } from './blobs.js';

/**
 * What reads and writes layer files, loaded when first needed: commands that only read the store's
 * records (images, inspect, history) never load tar code.
 */
const layerCode = async () => {
  const [{ applyLayer }, { writeLayerTar }, { readTar }, { RootfsView, DirLayer, ErofsLayer }, { writeErofs, ErofsUnsupported }, { ErofsImage }] = await Promise.all([
    import('../layer/apply.js'),
    import('../layer/diff.js'),
    import('../layer/tar-reader.js'),
    import('../fs/rootfs-view.js'),
    import('../layer/erofs-writer.js'),
    import('../fs/erofs-reader.js'),
  ]);
  return { applyLayer, writeLayerTar, readTar, RootfsView, DirLayer, ErofsLayer, writeErofs, ErofsUnsupported, ErofsImage };
};

/** In a blob-backed layer's directory: its files as an EROFS image, and the empty directory it is mounted on. */
const IMAGE = 'layer.erofs';
const IMAGE_MOUNT = 'erofs';
/** ...or a note that the layer needs extracting (erofs-writer.ts cannot lay it out exactly). */
const NO_IMAGE = 'no-erofs';

/** In a blob-backed layer's directory once diff/ is extracted: the digest of its files. */
const EXTRACTED = 'extracted.json';

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
  /** When a build first made this layer (history entries of steps that produce it take this time). */
  created?: string;
  /** SOURCE_DATE_EPOCH the layer was built with: file times in its tar are clamped to it. */
  clampMtime?: number;
  /** Paths of the layers below it deletes (whiteouts, opaque directories), when a build made it (RUN). */
  removes?: number;
}

/** The digest of a file's bytes, read as a stream. */
async function fileDigest(file: string): Promise<Digest> {
  const counter = new DigestCounter();
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) counter.update(c as Buffer);
  return counter.digest();
}

/**
 * Moves a finished directory to its content-addressed name. If the name exists already (another
 * process committed the same content first), ours is dropped; an existing one is never replaced.
 */
function renameOrDrop(staged: string, target: string): boolean {
  try {
    renameSync(staged, target);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    rmSync(staged, { recursive: true, force: true });
    return false;
  }
}

/**
 * Extracted layers keyed by chain ID, each an overlay lowerdir in overlay form, plus short links
 * (l/<16 hex>) so that a mount of 100+ layers fits in the kernel's one page of options.
 */
export class LayerStore {
  /** EROFS images opened for reading, by chain ID. */
  private readonly images = new Map<Digest, ErofsImage>();

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
    const existing = (): LayerMeta => {
      const found = this.meta(meta.chainId);
      this.ensureLink(found); // a command killed between its rename and its link left it without one
      return found;
    };
    if (this.has(meta.chainId)) {
      rmSync(staged, { recursive: true, force: true });
      return existing();
    }
    writeFileAtomic(path.join(staged, 'meta.json'), JSON.stringify(full));
    if (!renameOrDrop(staged, target)) return existing(); // another process was first
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

  /**
   * A layer's files for reading and mounting: diff/ when it is there (a RUN layer, or extracted);
   * else, with `images`, its EROFS image (made from the blob the first time), which a RUN step mounts
   * read-only instead of extracting the layer; else diff/, extracted now.
   */
  async files(chainId: Digest, tmpDir: string, images: boolean): Promise<LayerFiles> {
    const code = await layerCode();
    const diff = this.diffDir(chainId);
    if (images && !existsSync(diff)) {
      const image = await this.ensureImage(chainId, tmpDir);
      if (image) return new code.ErofsLayer(image);
    }
    return new code.DirLayer(await this.ensureExtracted(chainId, tmpDir));
  }

  /**
   * The layer's EROFS image and the short link (l/<link>e, to the empty directory it is mounted on)
   * when the layer is kept as an image and not extracted; undefined when its diff/ is what to mount.
   */
  imageMount(meta: LayerMeta): { file: string; link: string } | undefined {
    const dir = this.layerDir(meta.chainId);
    if (existsSync(path.join(dir, 'diff')) || !existsSync(path.join(dir, IMAGE))) return undefined;
    const link = `${meta.link}e`;
    const at = path.join(this.linksDir, link);
    if (!existsSync(at)) {
      const tmp = tempSibling(at);
      symlinkSync(path.join('..', path.basename(this.dir), hexOf(meta.chainId), IMAGE_MOUNT), tmp);
      renameSync(tmp, at);
    }
    return { file: path.join(dir, IMAGE), link };
  }

  /**
   * Opens the layer's EROFS image, writing it from the blob first if needed (checked against the
   * blob's digest on the way). Undefined when the layer must be extracted instead.
   */
  private async ensureImage(chainId: Digest, tmpDir: string): Promise<ErofsImage | undefined> {
    const open = this.images.get(chainId);
    if (open) return open;
    const { ErofsUnsupported, ErofsImage } = await layerCode();
    const dir = this.layerDir(chainId);
    const file = path.join(dir, IMAGE);
    if (!existsSync(file)) {
      const meta = this.meta(chainId);
      if (!meta.blob || existsSync(path.join(dir, NO_IMAGE))) return undefined;
      let staged: string;
      try {
        staged = await this.writeImage(meta, tmpDir);
      } catch (err) {
        if (!(err instanceof ErofsUnsupported)) throw err;
        writeFileAtomic(path.join(dir, NO_IMAGE), `${err.message}\n`, 0o644, false);
        return undefined;
      }
      mkdirSync(path.join(dir, IMAGE_MOUNT), { recursive: true });
      renameSync(staged, file); // the same bytes whoever writes them: a concurrent rename is harmless
    }
    const image = new ErofsImage(file);
    this.images.set(chainId, image);
    return image;
  }

  /** Writes a blob-backed layer's EROFS image into tmpDir from its blob, checked against its digest. */
  private async writeImage(meta: LayerMeta, tmpDir: string): Promise<string> {
    const { writeErofs, readTar } = await layerCode();
    mkdirSync(tmpDir, { recursive: true });
    const staged = path.join(tmpDir, `image-${hexOf(meta.chainId)}`);
    rmSync(staged, { force: true });
    const chunks = this.blobs.stream(meta.blob!);
    try {
      await writeErofs(readTar(chunks), staged, meta.parent !== undefined);
      for await (const _ of chunks); // the bytes after the end-of-archive blocks, and the digest check
    } catch (err) {
      rmSync(staged, { force: true });
      throw err;
    }
    return staged;
  }

  /**
   * Makes sure diff/ exists (extracting the blob the first time, checked against its digest), so the
   * layer can be mounted or read. Its parents are extracted first: missing directories take their
   * attributes from them. What the extracted files must hash to is recorded later, by fsck, from a
   * second extraction of the blob (extractedDigest): a build does not read the files back.
   */
  async ensureExtracted(chainId: Digest, tmpDir: string): Promise<string> {
    const diff = this.diffDir(chainId);
    if (existsSync(diff)) return diff;
    const staged = await this.extractBlob(chainId, tmpDir);
    renameOrDrop(staged, diff);
    return diff;
  }

  /** Extracts a layer's blob into a new directory under tmpDir, checking the blob's digest on the way. */
  private async extractBlob(chainId: Digest, tmpDir: string): Promise<string> {
    const { applyLayer, readTar } = await layerCode();
    const meta = this.meta(chainId);
    if (!meta.blob) throw new IntegrityError(`layer ${chainId} has neither files nor a blob in the store`);
    const parentAttrs = await this.parentAttrs(meta.parent, tmpDir);
    mkdirSync(tmpDir, { recursive: true });
    const staged = path.join(tmpDir, `extract-${hexOf(chainId)}`);
    rmSync(staged, { recursive: true, force: true });
    mkdirSync(staged);
    const chunks = this.blobs.stream(meta.blob);
    try {
      await applyLayer(readTar(chunks), staged, parentAttrs);
      for await (const _ of chunks); // the bytes after the end-of-archive blocks, and the digest check
    } catch (err) {
      rmSync(staged, { recursive: true, force: true });
      throw err;
    }
    return staged;
  }

  /**
   * The digest (of their canonical tar) that a blob-backed layer's extracted files must have: read
   * from extracted.json, else found by extracting the blob afresh into tmpDir, and recorded.
   */
  private async extractedDigest(chainId: Digest, tmpDir: string): Promise<Digest> {
    const file = path.join(this.layerDir(chainId), EXTRACTED);
    const recorded = readJsonIfAny<{ filesDigest?: Digest }>(file)?.filesDigest;
    if (recorded) return recorded;
    const { writeLayerTar } = await layerCode();
    const staged = await this.extractBlob(chainId, tmpDir);
    try {
      const { diffId } = await writeLayerTar(staged);
      writeFileAtomic(file, JSON.stringify({ filesDigest: diffId }), 0o644, false);
      return diffId;
    } finally {
      rmSync(staged, { recursive: true, force: true });
    }
  }

  /**
   * Checks a layer's files against its digest: a RUN layer's diff/ must give its diffID; a layer
   * extracted from a blob, what a fresh extraction of the blob gives (extractedDigest). Returns the
   * problem, if any.
   */
  async verifyFiles(chainId: Digest, tmpDir: string): Promise<string | undefined> {
    const { writeLayerTar } = await layerCode();
    const meta = this.meta(chainId);
    const image = path.join(this.layerDir(chainId), IMAGE);
    if (meta.blob && existsSync(image)) {
      // the image is written the same, byte for byte, whenever it is written from the blob
      const fresh = await this.writeImage(meta, tmpDir);
      try {
        const [a, b] = await Promise.all([fresh, image].map((f) => fileDigest(f)));
        if (a !== b) return `layer ${chainId}: its EROFS image (layer.erofs) no longer matches its blob ${meta.blob}`;
      } finally {
        rmSync(fresh, { force: true });
      }
    }
    if (!meta.blob) {
      const result = await writeLayerTar(this.diffDir(chainId), undefined, { clampMtime: meta.clampMtime });
      return result.diffId === meta.diffId ? undefined : `layer ${chainId}: its files no longer give diffID ${meta.diffId}`;
    }
    if (!existsSync(this.diffDir(chainId))) return undefined; // not extracted yet: the blob is all there is
    const expected = await this.extractedDigest(chainId, tmpDir);
    const { diffId } = await writeLayerTar(this.diffDir(chainId));
    return diffId === expected ? undefined : `layer ${chainId}: its extracted files (diff/) no longer match its blob ${meta.blob}`;
  }

  /** What the layers below a chain ID give each directory, for extracting a layer on top of them. */
  async parentAttrs(parent: Digest | undefined, tmpDir: string): Promise<ParentAttrs | undefined> {
    if (!parent) return undefined;
    const { RootfsView } = await layerCode();
    const dirs: string[] = [];
    for (let c: Digest | undefined = parent; c; c = this.meta(c).parent) dirs.push(await this.ensureExtracted(c, tmpDir));
    const view = new RootfsView(dirs);
    return (p) => {
      const st = view.resolve(p, false).entry?.stat;
      return st?.isDirectory() ? { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) } : undefined;
    };
  }

  /** Streams the layer tar into a sink and checks it against the diffID (after the last byte). */
  async writeTar(chainId: Digest, sink: ByteSink): Promise<void> {
    const meta = this.meta(chainId);
    if (meta.blob) {
      await this.blobs.copyTo(meta.blob, sink);
      return;
    }
    const { writeLayerTar } = await layerCode();
    const result = await writeLayerTar(this.diffDir(chainId), sink, { clampMtime: meta.clampMtime });
    if (result.diffId !== meta.diffId || result.size !== meta.size) {
      throw new IntegrityError(`layer ${chainId} in the store is corrupt: its files no longer give diffID ${meta.diffId}`);
    }
  }

  /** Removes a layer; it is first moved aside, so a crash never leaves half a layer under its name. */
  remove(chainId: Digest, trashDir: string): void {
    const meta = this.has(chainId) ? this.meta(chainId) : undefined;
    if (meta) for (const link of [meta.link, `${meta.link}e`]) rmSync(path.join(this.linksDir, link), { force: true });
    const dir = this.layerDir(chainId);
    if (!existsSync(dir)) return;
    mkdirSync(trashDir, { recursive: true });
    const aside = path.join(trashDir, hexOf(chainId));
    renameSync(dir, aside);
    rmSync(aside, { recursive: true, force: true });
  }
}

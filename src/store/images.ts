// images.json: tags and image records.
import { existsSync, readFileSync } from 'node:fs';
import { IntegrityError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import { writeFileAtomic } from './atomic.js';

/** An image the store holds: its ID is its config digest; the manifest ties config and layers. */
export interface ImageRecord {
  id: Digest;
  manifest: Digest;
  /** When this store got the image (build end, load, import). */
  added: string;
  /** The image it was built FROM, when that came from this store (`rmi` refuses to remove a parent). */
  parent?: Digest;
  /**
   * The config's created time and the sum of the layers' content sizes, recorded when the image is
   * committed: `images` lists a store from this file alone (records written before they were kept
   * lack them, and are read in full).
   */
  created?: string;
  size?: number;
  /**
   * The chain ID of its top layer ('' for an image of no layers): prune and system df follow the
   * layers' parent links from it instead of reading 1,000 configs (older records lack it).
   */
  top?: Digest | '';
}

export interface ImageIndexFile {
  /** Normalised name (docker.io/library/x:tag) → image ID. */
  tags: Record<string, Digest>;
  images: Record<string, ImageRecord>;
  /** Repository digest (docker.io/library/x@sha256:…, the manifest a registry served) → image ID. */
  digests: Record<string, Digest>;
}

/** A normalised `name:tag@sha256:…` or `name@sha256:…` as images.json keys it (`name@sha256:…`; a tag beside a digest is ignored, as Docker ignores it); undefined for a name without a digest. */
export function digestReference(normalized: string | undefined): string | undefined {
  return normalized?.includes('@') ? normalized.replace(/:[^/@]+@/, '@') : undefined;
}

/** images.json: tags and image records. Callers hold the store lock while they change it. */
export class ImageIndex {
  constructor(readonly file: string) {}

  read(): ImageIndexFile {
    if (!existsSync(this.file)) return { tags: {}, images: {}, digests: {} };
    let data: ImageIndexFile;
    try {
      data = JSON.parse(readFileSync(this.file, 'utf8')) as ImageIndexFile;
    } catch (err) {
      throw new IntegrityError(`the store's image index ${this.file} is unreadable`, { cause: err });
    }
    return { tags: data.tags ?? {}, images: data.images ?? {}, digests: data.digests ?? {} };
  }

  write(data: ImageIndexFile): void {
    writeFileAtomic(this.file, JSON.stringify(data, null, 1));
  }

  /** Adds (or replaces) an image and points the given tags (and repository digests) at it. */
  put(record: ImageRecord, tags: readonly string[], digests: readonly string[] = []): void {
    const data = this.read();
    const unchanged = data.images[record.id] && tags.every((t) => data.tags[t] === record.id) && digests.every((d) => data.digests[d] === record.id);
    if (unchanged) return; // an unchanged rebuild: no write, no fsync
    const existing = data.images[record.id];
    // an image already here keeps its record; one written before summaries were kept gains them
    data.images[record.id] = !existing ? record : existing.size !== undefined || record.size === undefined ? existing : { ...existing, created: record.created, size: record.size };
    for (const t of tags) data.tags[t] = record.id;
    for (const d of digests) data.digests[d] = record.id;
    this.write(data);
  }

  /** Drops images from `data` with the repository digests that name them (the caller writes it). */
  static drop(data: ImageIndexFile, ids: readonly Digest[]): void {
    for (const id of ids) delete data.images[id];
    for (const [d, id] of Object.entries(data.digests)) if (ids.includes(id)) delete data.digests[d];
  }

  /** Image ID for a normalised name, or for an ID / unique ID prefix. */
  resolve(nameOrId: string, normalized?: string): Digest | undefined {
    const data = this.read();
    const byDigest = digestReference(normalized);
    if (byDigest) return data.digests[byDigest];
    if (normalized && data.tags[normalized]) return data.tags[normalized];
    const hex = nameOrId.startsWith('sha256:') ? nameOrId.slice(7) : nameOrId;
    if (/^[0-9a-f]{4,64}$/.test(hex)) {
      const hits = Object.keys(data.images).filter((id) => id.slice(7).startsWith(hex));
      if (hits.length === 1 && isDigest(hits[0])) return hits[0];
    }
    return undefined;
  }
}

/** Every image's tags and repository digests, from one read of images.json: what listing many images asks. */
export function namesByImage(data: ImageIndexFile): { tags: (id: Digest) => string[]; digests: (id: Digest) => string[] } {
  const group = (names: Record<string, Digest>) => {
    const out = new Map<string, string[]>();
    for (const [name, id] of Object.entries(names)) {
      const list = out.get(id);
      if (list) list.push(name);
      else out.set(id, [name]);
    }
    for (const list of out.values()) list.sort();
    return (id: Digest) => [...(out.get(id) ?? [])];
  };
  return { tags: group(data.tags), digests: group(data.digests) };
}

// Imported build cache: a step's key found in a --cache-from source, its layers fetched only when a step needs their files.
import { Readable } from 'node:stream';
import { chainIds } from '../image/chain-id.js';
import { commitLayerBlob, stageLayerBlob, type StagedLayer } from '../store/import-layer.js';
import { LayerSources } from '../store/layer-sources.js';
import { LayerStore, type LayerMeta } from '../store/layers.js';
import type { Store } from '../store/store.js';
import type { Digest } from '../util/digest.js';
import { Semaphore } from '../util/limit.js';
import type { CacheBlob, CacheRecord } from './config.js';

/** A --cache-from source once read: its records by key, and how to fetch one of its blobs (checked). */
export interface CacheSource {
  /** `localhost:5000/app:cache`, `local:/ci/cache`, for messages. */
  name: string;
  records: ReadonlyMap<string, CacheRecord>;
  fetch(blob: CacheBlob): AsyncIterable<Buffer>;
  /** The repository a registry cache is in: its blobs can be mounted from there. */
  registry?: { domain: string; repository: string };
}

interface Pending {
  blob: CacheBlob;
  parent?: Digest;
  source: CacheSource;
  created?: string;
}

/** Layer blobs fetched at once. */
const PARALLEL_FETCHES = 4;

/**
 * The build cache other machines exported. A hit gives the step's layer by chain ID at once; its
 * blob (and those below it that the store lacks) is fetched only when a step reads the stage's
 * files, or the image is recorded: a stage whose result no later step needs is never downloaded.
 */
export class ImportedCache {
  private readonly pending = new Map<Digest, Pending>();
  private readonly staged = new Map<Digest, Promise<StagedLayer>>();
  private readonly committed = new Map<Digest, Promise<void>>();
  private readonly slots = new Semaphore(PARALLEL_FETCHES);
  /** Steps answered from here, for the build's summary. */
  hits = 0;

  constructor(
    private readonly store: Store,
    private readonly sources: readonly CacheSource[],
    private readonly work: string,
  ) {}

  /** The layer a step with this key made, if a source has it on top of exactly the stage's layers. */
  lookup(key: string, below: readonly LayerMeta[]): { layer: LayerMeta; createdBy: string } | undefined {
    for (const source of this.sources) {
      const record = source.records.get(key);
      if (!record) continue;
      const chain = chainIds(record.chain.map((b) => b.diffId));
      if (chain.length !== below.length + 1 || below.some((l, i) => l.chainId !== chain[i])) continue;
      record.chain.forEach((blob, i) => {
        const c = chain[i]!;
        const created = i === chain.length - 1 ? record.createdAt : undefined;
        if (!this.store.layers.has(c) && !this.pending.has(c)) this.pending.set(c, { blob, parent: chain[i - 1], source, created });
      });
      const top = chain.at(-1)!;
      this.hits++;
      const layer: LayerMeta = this.store.layers.has(top)
        ? this.store.layers.meta(top)
        : { chainId: top, diffId: record.chain.at(-1)!.diffId, parent: chain.at(-2), size: 0, contentSize: 0, link: LayerStore.linkName(top), ...(record.createdAt ? { created: record.createdAt } : {}) };
      return { layer, createdBy: record.createdBy };
    }
    return undefined;
  }

  /**
   * A layer this cache holds and the store does not (yet): its blob and the registry repository it
   * is in, so that an export to that registry mounts or skips it instead of fetching it first.
   */
  remote(chainId: Digest): { blob: CacheBlob; registry?: { domain: string; repository: string } } | undefined {
    const p = this.pending.get(chainId);
    if (!p || this.store.layers.has(chainId)) return undefined;
    return { blob: p.blob, registry: p.source.registry };
  }

  /** Makes sure every layer is in the store: what came from this cache is fetched (in parallel) and recorded bottom up. */
  async materialize(layers: readonly LayerMeta[]): Promise<void> {
    const missing = layers.filter((l) => this.pending.has(l.chainId) && !this.store.layers.has(l.chainId));
    for (const l of missing) void this.stage(l.chainId).catch(() => undefined); // start every download now
    for (const l of missing) await this.commit(l.chainId);
  }

  /** A layer's blob fetched into temp space, once per diffID (two chains may share a layer). */
  private stage(chainId: Digest): Promise<StagedLayer> {
    const { blob, source } = this.pending.get(chainId)!;
    let p = this.staged.get(blob.diffId);
    if (!p) {
      p = this.slots.run(() => stageLayerBlob(Readable.from(source.fetch(blob)), this.work, blob.diffId));
      this.staged.set(blob.diffId, p);
    }
    return p;
  }

  private commit(chainId: Digest): Promise<void> {
    let p = this.committed.get(chainId);
    if (!p) {
      p = (async () => {
        const { parent, created, blob, source } = this.pending.get(chainId)!;
        if (parent && this.pending.has(parent)) await this.commit(parent);
        if (!this.store.layers.has(chainId)) commitLayerBlob(this.store, await this.stage(chainId), parent, this.work, created);
        // fetched and checked against its diffID: a push or the next export mounts it instead of compressing it again
        if (source.registry) new LayerSources(this.store).add(blob.diffId, { ...source.registry, digest: blob.digest, size: blob.size, mediaType: blob.mediaType });
      })();
      this.committed.set(chainId, p);
    }
    return p;
  }
}

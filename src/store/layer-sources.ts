// Where a layer's compressed blob is known to be in a registry: what push mounts or skips instead of uploading.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { hexOf, isDigest, type Digest } from '../util/digest.js';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';
import type { Store } from './store.js';

/** A compressed blob of a layer in a registry repository, as a pull or a push left it. */
export interface LayerSource {
  /** The registry domain (`docker.io`, `localhost:5000`). */
  domain: string;
  /** The repository path (`library/busybox`). */
  repository: string;
  digest: Digest;
  size: number;
  mediaType: string;
}

/** How many places are remembered per layer (the newest kept). */
const MAX_SOURCES = 16;

/**
 * sources/<diffID hex>.json → the registry blobs known to hold that layer (Docker's v2 metadata).
 * A push to the same registry checks or mounts them instead of compressing and uploading.
 */
export class LayerSources {
  readonly dir: string;

  constructor(store: Store) {
    this.dir = path.join(store.root, 'sources');
  }

  private file(diffId: Digest): string {
    return path.join(this.dir, `${hexOf(diffId)}.json`);
  }

  of(diffId: Digest): LayerSource[] {
    return readJsonIfAny<LayerSource[]>(this.file(diffId))?.filter((s) => isDigest(s.digest)) ?? [];
  }

  add(diffId: Digest, source: LayerSource): void {
    const same = (s: LayerSource) => s.domain === source.domain && s.repository === source.repository && s.digest === source.digest;
    const list = this.of(diffId);
    if (list.some(same)) return;
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.file(diffId), JSON.stringify([source, ...list].slice(0, MAX_SOURCES)), 0o644, false);
  }

  /** prune: records of layers the store no longer has. */
  removeExcept(diffIds: ReadonlySet<string>): void {
    if (!existsSync(this.dir)) return;
    for (const f of readdirSync(this.dir)) {
      if (f.endsWith('.json') && !diffIds.has(`sha256:${f.slice(0, -5)}`)) rmSync(path.join(this.dir, f), { force: true });
    }
  }
}

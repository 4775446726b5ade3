// The build cache's step records: what each step of a Dockerfile was last built from, to tell why it misses.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';

/**
 * What a step was built from, as its cache key hashed it: the layer it started on, what the step
 * depends on (`material`: the instruction after expansion, the environment a RUN saw, the digest
 * of COPY's sources; names and digests, never a file's content or a secret's value), the build
 * args in scope and SOURCE_DATE_EPOCH.
 */
export interface StepRecord {
  /** The step's cache key (builder/cache-key.ts). */
  key: string;
  /** The chain ID of the layer it started on, or 'scratch'. */
  parent: string;
  material: Record<string, unknown>;
  /** The build args in scope, in order, with their values. */
  args: Array<[string, string]>;
  epoch?: number;
  /** With a list of the sources (see `files`): the digest of that list, which its first line repeats. */
  files?: string;
  /** What the build checks found of these sources (COPY's key-like files), kept for the next build of the same sources. */
  notes?: Record<string, unknown>;
}

/**
 * cache/steps/<slot>.json: the last build of each step, by its slot (the context, Dockerfile, stage
 * and position, builder/cache-miss.ts), and beside it (<slot>.files) the list of COPY's sources,
 * a line per path with its type, mode and digest. A record is replaced each time its slot is built
 * from something else; records are advisory (a lost or damaged one costs only the explanation),
 * so they are written without fsync. They outlive the cache entries a plain prune removes (the next
 * build says its entry was pruned), and go with `prune --all`, as the build cache does.
 */
export class StepRecords {
  readonly dir: string;

  constructor(root: string) {
    this.dir = path.join(root, 'cache', 'steps');
  }

  read(slot: string): StepRecord | undefined {
    const record = readJsonIfAny<StepRecord>(path.join(this.dir, `${slot}.json`));
    return record && typeof record.key === 'string' && typeof record.parent === 'string' && typeof record.material === 'object' && record.material !== null && Array.isArray(record.args)
      ? record
      : undefined;
  }

  /** The sources list a record names, when the file beside it is that list (its first line is `files`). */
  files(slot: string, files: string): string | undefined {
    let text: string;
    try {
      text = readFileSync(path.join(this.dir, `${slot}.files`), 'utf8');
    } catch {
      return undefined;
    }
    const head = `${files}\n`;
    return text.startsWith(head) ? text.slice(head.length) : undefined;
  }

  /** Removes the records (and their lists) last written before `beforeMs` (all when undefined); returns how many. */
  removeOlderThan(beforeMs?: number): number {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith('.json') && !name.endsWith('.files')) continue;
      const file = path.join(this.dir, name);
      try {
        if (beforeMs !== undefined && statSync(file).mtimeMs >= beforeMs) continue;
      } catch {
        continue;
      }
      rmSync(file, { force: true });
      if (name.endsWith('.json')) removed++;
    }
    return removed;
  }

  /** Replaces the slot's record; `files`: the sources list (in chunks) that `record.files` names. */
  write(slot: string, record: StepRecord, files?: readonly string[]): void {
    mkdirSync(this.dir, { recursive: true });
    if (record.files !== undefined && files) writeFileAtomic(path.join(this.dir, `${slot}.files`), [`${record.files}\n`, ...files].join(''), 0o644, false);
    writeFileAtomic(path.join(this.dir, `${slot}.json`), JSON.stringify(record), 0o644, false);
  }
}

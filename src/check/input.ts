// What the hygiene checks read: the Dockerfile's stages, and (for some) the build context.
import type { Stage } from '../plan/stages.js';
import type { Linter } from './linter.js';

/** The build context as COPY would see it (the builder's source tree, .dockerignore applied). */
export interface ContextFiles {
  /** Every file and directory COPY of `source` would send, relative to the context ([] when none). */
  sources(source: string): Array<{ path: string; dir: boolean }>;
  /** Up to `bytes` first bytes of a context file. */
  head(path: string, bytes: number): Buffer;
  /** Whether .dockerignore leaves this source (as written in COPY) out of the context. */
  ignored(source: string): boolean;
  /** Whether ADD would unpack this context file (a tar, compressed or not). */
  isArchive(path: string): Promise<boolean>;
}

export interface CheckInput {
  stages: readonly Stage[];
  /** Each stage's base with the global ARGs expanded (by stage index). */
  bases: readonly string[];
  /** The build context, for the rules that look at files. */
  context?: ContextFiles;
  linter: Linter;
}

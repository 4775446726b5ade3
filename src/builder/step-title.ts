// Step names as BuildKit shows them: [stage N/M], variables expanded.
import type { Instruction } from '../dockerfile/instructions.js';
import { expandForDisplay, expandWord, type Env } from '../dockerfile/shell-words.js';
import { parseReference } from '../image/reference.js';
import type { Stage } from '../plan/stages.js';

/**
 * What a step is called in the progress display, as BuildKit names its steps: RUN as written with
 * the variables that are set expanded (quotes kept); COPY, ADD and WORKDIR with their words
 * expanded; other instructions as written.
 */
export function stepTitle(ins: Instruction, env: Env, escape: string): string {
  const word = (w: string) => {
    try {
      return expandWord(w, env, escape);
    } catch {
      return w;
    }
  };
  const [keyword = '', ...rest] = ins.original.split(' ');
  const original = [keyword.toUpperCase(), ...rest].join(' ');
  switch (ins.keyword) {
    case 'RUN':
      return expandForDisplay(original, env, escape);
    case 'COPY':
    case 'ADD': {
      const flags = [
        ins.from !== undefined ? `--from=${word(ins.from)}` : '',
        ins.chown !== undefined ? `--chown=${word(ins.chown)}` : '',
        ins.chmod !== undefined ? `--chmod=${word(ins.chmod)}` : '',
        ins.link ? '--link' : '',
      ].filter(Boolean);
      return [ins.keyword, ...flags, ...ins.sources.map(word), ...ins.inline.map((d) => `<<${d.name}`), word(ins.dest)].join(' ');
    }
    case 'WORKDIR':
      return `WORKDIR ${word(ins.value)}`;
    default:
      return original;
  }
}

/** FROM as BuildKit names it: an image by its full name (the tag only when written), a stage or scratch as written. */
export function fromTitle(base: string, isStage: boolean): string {
  if (isStage || base === 'scratch') return `FROM ${base}`;
  try {
    const ref = parseReference(base);
    const tagged = /:[^/]*$/.test(base.split('@')[0]!);
    return `FROM ${ref.domain}/${ref.path}${tagged && ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  } catch {
    return `FROM ${base}`;
  }
}

/**
 * BuildKit's `[stage N/M]` prefix: steps are numbered within their stage (FROM, its ONBUILD
 * triggers, its instructions), the number padded to M's width; the stage is named when the
 * Dockerfile has more than one (`stage-<index>` when it has no name).
 */
export class StageCounter {
  private n = 0;
  constructor(
    private readonly name: string,
    private readonly total: number,
  ) {}

  static of(stage: Stage, stages: number, triggers: number): StageCounter {
    return new StageCounter(stages > 1 ? (stage.name ?? `stage-${stage.index}`) : '', 1 + triggers + stage.instructions.length);
  }

  next(title: string): string {
    const width = String(this.total).length;
    return `[${this.name ? `${this.name} ` : ''}${String(++this.n).padStart(width)}/${this.total}] ${title}`;
  }
}

import { Writable } from 'node:stream';

/** What a build tells its user, step by step (BuildKit's progress modes render it). */
export interface Progress {
  step(id: number, label: string): void;
  /** Output of the step's RUN command. */
  output(id: number, chunk: Buffer): void;
  done(id: number, seconds: number, cached: boolean): void;
  failed(id: number): void;
  info(line: string): void;
  warning(line: string): void;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet' | 'rawjson';

/** `--progress=plain`: every line kept, as CI logs want it. */
export class PlainProgress implements Progress {
  constructor(private readonly out: NodeJS.WritableStream) {}
  step(id: number, label: string) {
    this.out.write(`#${id} ${label}\n`);
  }
  output(_id: number, chunk: Buffer) {
    this.out.write(chunk);
  }
  done(id: number, seconds: number, cached: boolean) {
    this.out.write(cached ? `#${id} CACHED\n` : `#${id} DONE ${seconds.toFixed(1)}s\n`);
  }
  failed(id: number) {
    this.out.write(`#${id} ERROR\n`);
  }
  info(line: string) {
    this.out.write(`${line}\n`);
  }
  warning(line: string) {
    this.out.write(`WARNING: ${line}\n`);
  }
}

/** `--progress=quiet` (and `-q`): nothing but errors, which the CLI prints. */
export class QuietProgress implements Progress {
  step() {}
  output() {}
  done() {}
  failed() {}
  info() {}
  warning() {}
}

/** `--progress=rawjson`: one JSON object a line, for tools. */
export class RawJsonProgress implements Progress {
  constructor(private readonly out: NodeJS.WritableStream) {}
  private emit(o: Record<string, unknown>) {
    this.out.write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
  }
  step(id: number, label: string) {
    this.emit({ type: 'step', id, name: label });
  }
  output(id: number, chunk: Buffer) {
    this.emit({ type: 'log', id, data: chunk.toString('base64') });
  }
  done(id: number, seconds: number, cached: boolean) {
    this.emit({ type: 'done', id, cached, duration: seconds });
  }
  failed(id: number) {
    this.emit({ type: 'error', id });
  }
  info(line: string) {
    this.emit({ type: 'info', message: line });
  }
  warning(line: string) {
    this.emit({ type: 'warning', message: line });
  }
}

/**
 * `--progress=tty`: one line per step with its number, instruction and CACHED or its time; a RUN's
 * output shows live under it and is folded away when the step succeeds (kept when it fails).
 */
export class TtyProgress implements Progress {
  private current?: { id: number; label: string; lines: number; partial: boolean };
  /** Once stages run side by side, steps interleave: lines are prefixed and nothing is folded. */
  private readonly interleaved: PlainProgress;
  private active = new Set<number>();

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {
    this.interleaved = new PlainProgress(out);
  }

  step(id: number, label: string) {
    this.active.add(id);
    if (this.active.size > 1 || this.current) {
      this.current = undefined;
      this.interleaved.step(id, label);
      return;
    }
    this.current = { id, label, lines: 0, partial: false };
    this.out.write(`\x1b[1m => [${id}] ${this.fit(label)}\x1b[0m\n`);
  }

  private fit(s: string): string {
    const width = Math.max(40, (this.out.columns || 100) - 20);
    return s.length > width ? `${s.slice(0, width - 1)}…` : s;
  }

  output(id: number, chunk: Buffer) {
    if (!this.current || this.current.id !== id) {
      this.interleaved.output(id, chunk);
      return;
    }
    const text = chunk.toString();
    for (const ch of text) {
      if (!this.current.partial) {
        this.out.write('\x1b[2m    ');
        this.current.partial = true;
      }
      if (ch === '\n') {
        this.out.write('\x1b[0m\n');
        this.current.lines++;
        this.current.partial = false;
      } else this.out.write(ch);
    }
  }

  done(id: number, seconds: number, cached: boolean) {
    this.active.delete(id);
    const c = this.current;
    if (!c || c.id !== id) {
      this.interleaved.done(id, seconds, cached);
      return;
    }
    const rows = c.lines + 1 + (c.partial ? 1 : 0);
    // fold the output away: back to the step's line, clear below, write it finished
    this.out.write(`${c.partial ? '\x1b[0m\n' : ''}\x1b[${rows}A\x1b[J`);
    this.out.write(` => ${cached ? 'CACHED ' : ''}[${id}] ${this.fit(c.label)}${cached ? '' : `  ${seconds.toFixed(1)}s`}\n`);
    this.current = undefined;
  }

  failed(id: number) {
    this.active.delete(id);
    if (this.current?.partial) this.out.write('\x1b[0m\n');
    this.out.write(`\x1b[31m => ERROR [${id}]\x1b[0m\n`);
    this.current = undefined;
  }

  info(line: string) {
    this.out.write(` => ${line}\n`);
  }

  warning(line: string) {
    this.out.write(`\x1b[33m WARNING: ${line}\x1b[0m\n`);
  }
}

export function makeProgress(mode: ProgressMode, out: NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  switch (mode) {
    case 'quiet':
      return new QuietProgress();
    case 'rawjson':
      return new RawJsonProgress(out);
    case 'plain':
      return new PlainProgress(out);
    case 'tty':
      return new TtyProgress(out);
    default:
      return out.isTTY ? new TtyProgress(out) : new PlainProgress(out);
  }
}

/** A Writable that hands what a step's command prints to the progress display. */
export function stepOutput(progress: Progress, id: () => number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      progress.output(id(), chunk);
      cb();
    },
  });
}

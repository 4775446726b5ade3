import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

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

/** Splits each step's output into whole lines (UTF-8 characters never cut across chunks). */
class LineSplitter {
  private readonly pending = new Map<number, { decoder: StringDecoder; partial: string }>();

  lines(id: number, chunk: Buffer): string[] {
    let p = this.pending.get(id);
    if (!p) this.pending.set(id, (p = { decoder: new StringDecoder('utf8'), partial: '' }));
    const parts = (p.partial + p.decoder.write(chunk)).split('\n');
    p.partial = parts.pop()!;
    return parts;
  }

  /** What is left of a step's output when it ends. */
  flush(id: number): string[] {
    const p = this.pending.get(id);
    this.pending.delete(id);
    const rest = p ? p.partial + p.decoder.end() : '';
    return rest ? [rest] : [];
  }
}

/** `--progress=plain`: every line kept and marked with its step, as CI logs want it. */
export class PlainProgress implements Progress {
  private readonly split = new LineSplitter();
  constructor(private readonly out: NodeJS.WritableStream) {}
  step(id: number, label: string) {
    this.out.write(`#${id} ${label}\n`);
  }
  output(id: number, chunk: Buffer) {
    const lines = this.split.lines(id, chunk);
    if (lines.length > 0) this.out.write(lines.map((l) => `#${id} ${l}\n`).join(''));
  }
  private flush(id: number) {
    for (const l of this.split.flush(id)) this.out.write(`#${id} ${l}\n`);
  }
  done(id: number, seconds: number, cached: boolean) {
    this.flush(id);
    this.out.write(cached ? `#${id} CACHED\n` : `#${id} DONE ${seconds.toFixed(1)}s\n`);
  }
  failed(id: number) {
    this.flush(id);
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
 * output shows live under it (each line cut to the terminal's width, so that folding knows how many
 * rows to take back) and is folded away when the step succeeds, kept when it fails. Once stages run
 * side by side and steps interleave, it writes as plain does.
 */
export class TtyProgress implements Progress {
  private current?: { id: number; label: string; rows: number };
  private readonly split = new LineSplitter();
  private readonly interleaved: PlainProgress;
  private readonly active = new Set<number>();

  constructor(private readonly out: NodeJS.WritableStream & { columns?: number }) {
    this.interleaved = new PlainProgress(out);
  }

  private get width(): number {
    return Math.max(40, this.out.columns || 100);
  }

  private fit(s: string, room: number): string {
    return s.length > room ? `${s.slice(0, room - 1)}…` : s;
  }

  step(id: number, label: string) {
    this.active.add(id);
    if (this.active.size > 1 || this.current) {
      this.current = undefined;
      this.interleaved.step(id, label);
      return;
    }
    this.current = { id, label, rows: 0 };
    this.out.write(`\x1b[1m => [${id}] ${this.fit(label, this.width - 20)}\x1b[0m\n`);
  }

  output(id: number, chunk: Buffer) {
    if (this.current?.id !== id) {
      this.interleaved.output(id, chunk);
      return;
    }
    this.writeLines(this.split.lines(id, chunk));
  }

  private writeLines(lines: string[]) {
    if (!this.current || lines.length === 0) return;
    this.out.write(lines.map((l) => `\x1b[2m    ${this.fit(l.replace(/\r|\x1b\[[0-9;]*[A-Za-z]/g, ''), this.width - 5)}\x1b[0m\n`).join(''));
    this.current.rows += lines.length;
  }

  done(id: number, seconds: number, cached: boolean) {
    this.active.delete(id);
    const c = this.current;
    if (c?.id !== id) {
      this.interleaved.done(id, seconds, cached);
      return;
    }
    this.split.flush(id);
    // fold the output away: back to the step's line, clear below, write it finished
    this.out.write(`\x1b[${c.rows + 1}A\x1b[J => ${cached ? 'CACHED ' : ''}[${id}] ${this.fit(c.label, this.width - 20)}${cached ? '' : `  ${seconds.toFixed(1)}s`}\n`);
    this.current = undefined;
  }

  failed(id: number) {
    this.active.delete(id);
    if (this.current?.id === id) this.writeLines(this.split.flush(id));
    else this.interleaved.failed(id);
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

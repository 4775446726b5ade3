// Build progress as BuildKit shows it: plain, tty, quiet, rawjson.
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export type MissCause =
  | 'no-cache'
  | 'first-build'
  | 'removed'
  | 'base-image'
  | 'previous-step'
  | 'build-arg'
  | 'env'
  | 'files'
  | 'instruction'
  | 'option'
  | 'source-date-epoch';

/** Why a step ran (builder/cache-miss.ts tells): one line for people, and its parts as fields (`--progress=rawjson`, the library's events). */
export interface CacheMiss {
  cause: MissCause;
  /** `src/app.py changed (and 2 more files)`, `build-arg VERSION changed (1 -> 2)`, `the step before it changed`... */
  reason: string;
  /** The build arg, ENV variable or option that changed. */
  name?: string;
  /** A build arg's values, before and after (absent: unset before, or hidden as a secret's). */
  before?: string;
  after?: string;
  /** The sources that changed, were added or removed (the first 20 of each), and how many in all. */
  files?: { changed: string[]; added: string[]; removed: string[]; total: number };
}

/** A build check's warning, as a build reports it (check/linter.ts gives them). */
export interface CheckNote {
  rule: string;
  message: string;
  /** The Dockerfile and the instruction's first line, when the warning is about one. */
  file?: string;
  line?: number;
  /** BuildKit's documentation page of the rule. */
  url?: string;
  /** tsbuild's hygiene rules: the one-line fix. */
  fix?: string;
}

/** BuildKit's short form of a check warning: `FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)`. */
export function shortCheck(n: CheckNote): string {
  return `${n.rule}: ${n.message}${n.line ? ` (line ${n.line})` : ''}`;
}

/** What a build tells its user, step by step (BuildKit's progress modes render it). */
export interface Progress {
  step(id: number, label: string): void;
  /** Output of the step's RUN command. */
  output(id: number, chunk: Buffer): void;
  /** A line about the step's own work (a layer downloading: `sha256:ab… 1.2MB / 3.4MB 0.4s`), not its command's output. */
  status(id: number, line: string): void;
  /** The step missed the build cache, and will run: why. */
  cacheMiss(id: number, miss: CacheMiss): void;
  done(id: number, seconds: number, cached: boolean): void;
  /** The step failed with this error, or (without one) was stopped because another step failed or the build was interrupted. */
  failed(id: number, error?: string): void;
  info(line: string): void;
  warning(line: string): void;
  /** The build checks' warnings, once the build is over (or has failed): BuildKit's summary. */
  checks(notes: readonly CheckNote[]): void;
}

/** buildx's summary of check warnings (printWarnings), pointing at --check for the long form. */
function checkSummary(notes: readonly CheckNote[], color: boolean): string {
  if (notes.length === 0) return '';
  const head = `${notes.length === 1 ? '1 warning found' : `${notes.length} warnings found`} (use tsbuild build --check to expand):`;
  return `\n ${color ? `\x1b[33m${head}\x1b[0m` : head}\n${notes.map((n) => ` - ${shortCheck(n)}\n`).join('')}`;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet' | 'rawjson';

/** A line of a step's output, and when its first byte came (ms since the epoch). */
interface Line {
  text: string;
  at: number;
}

/** Splits each step's output into whole lines (UTF-8 characters never cut across chunks). */
class LineSplitter {
  private readonly pending = new Map<number, { decoder: StringDecoder; partial: string; at: number }>();

  lines(id: number, chunk: Buffer, now = Date.now()): Line[] {
    let p = this.pending.get(id);
    if (!p) this.pending.set(id, (p = { decoder: new StringDecoder('utf8'), partial: '', at: now }));
    if (p.partial === '') p.at = now;
    const parts = (p.partial + p.decoder.write(chunk)).split('\n');
    p.partial = parts.pop()!;
    // a line started in an earlier chunk keeps that chunk's time, as BuildKit's printer keeps it
    const out = parts.map((text, i) => ({ text, at: i === 0 ? p.at : now }));
    p.at = now;
    return out;
  }

  /** What is left of a step's output when it ends. */
  flush(id: number): Line[] {
    const p = this.pending.get(id);
    this.pending.delete(id);
    const rest = p ? p.partial + p.decoder.end() : '';
    return rest ? [{ text: rest, at: p!.at }] : [];
  }
}

/** Seconds since a step started as BuildKit's plain printer writes them: 3 decimals under 10 s, 2 under 100 s, then 1. */
export function elapsed(seconds: number): string {
  return seconds.toFixed(seconds < 10 ? 3 : seconds < 100 ? 2 : 1);
}

/**
 * `--progress=plain`: every line kept and marked with its step, as CI logs want it, in BuildKit's
 * form: `#5 [2/3] RUN make`, `#5 0.512 output`, `#5 DONE 1.2s`, `#5 CACHED`, `#5 ERROR: why`.
 */
export class PlainProgress implements Progress {
  private readonly split = new LineSplitter();
  private readonly started = new Map<number, number>();
  constructor(private readonly out: NodeJS.WritableStream) {}
  step(id: number, label: string) {
    this.started.set(id, Date.now());
    this.out.write(`#${id} ${label}\n`);
  }
  private write(id: number, lines: Line[]) {
    const start = this.started.get(id) ?? Date.now();
    if (lines.length > 0) this.out.write(lines.map((l) => `#${id} ${elapsed(Math.max(0, l.at - start) / 1000)} ${l.text}\n`).join(''));
  }
  output(id: number, chunk: Buffer) {
    this.write(id, this.split.lines(id, chunk));
  }
  status(id: number, line: string) {
    this.out.write(`#${id} ${line}\n`);
  }
  cacheMiss(id: number, miss: CacheMiss) {
    this.out.write(`#${id} CACHE MISS: ${miss.reason}\n`);
  }
  private flush(id: number) {
    this.write(id, this.split.flush(id));
    this.started.delete(id);
  }
  done(id: number, seconds: number, cached: boolean) {
    this.flush(id);
    this.out.write(cached ? `#${id} CACHED\n` : `#${id} DONE ${seconds.toFixed(1)}s\n`);
  }
  failed(id: number, error?: string) {
    this.flush(id);
    this.out.write(error === undefined ? `#${id} CANCELED\n` : `#${id} ERROR: ${error}\n`);
  }
  info(line: string) {
    this.out.write(`${line}\n`);
  }
  warning(line: string) {
    this.out.write(`WARNING: ${line}\n`);
  }
  checks(notes: readonly CheckNote[]) {
    this.out.write(checkSummary(notes, false));
  }
}

/** `--progress=quiet` (and `-q`): nothing but errors, which the CLI prints. */
export class QuietProgress implements Progress {
  step() {}
  output() {}
  status() {}
  cacheMiss() {}
  done() {}
  failed() {}
  info() {}
  warning() {}
  checks() {}
}

/** What a build tells, as data: the library's progress events, and (one JSON object a line) `--progress=rawjson`. */
export type BuildEvent =
  | { type: 'step'; id: number; name: string }
  | { type: 'log'; id: number; data: Buffer }
  | { type: 'status'; id: number; message: string }
  | ({ type: 'cache-miss'; id: number } & CacheMiss)
  | { type: 'done'; id: number; cached: boolean; duration: number }
  | { type: 'error'; id: number; error: string }
  | { type: 'canceled'; id: number }
  | { type: 'info'; message: string }
  | { type: 'warning'; message: string }
  | ({ type: 'check' } & CheckNote);

/** Hands every event to a function (the library's `onEvent`). */
export class EventProgress implements Progress {
  constructor(private readonly emit: (event: BuildEvent) => void) {}
  step(id: number, label: string) {
    this.emit({ type: 'step', id, name: label });
  }
  output(id: number, chunk: Buffer) {
    this.emit({ type: 'log', id, data: chunk });
  }
  status(id: number, line: string) {
    this.emit({ type: 'status', id, message: line });
  }
  cacheMiss(id: number, miss: CacheMiss) {
    this.emit({ type: 'cache-miss', id, ...miss });
  }
  done(id: number, seconds: number, cached: boolean) {
    this.emit({ type: 'done', id, cached, duration: seconds });
  }
  failed(id: number, error?: string) {
    this.emit(error === undefined ? { type: 'canceled', id } : { type: 'error', id, error });
  }
  info(line: string) {
    this.emit({ type: 'info', message: line });
  }
  warning(line: string) {
    this.emit({ type: 'warning', message: line });
  }
  checks(notes: readonly CheckNote[]) {
    for (const n of notes) this.emit({ type: 'check', ...n });
  }
}

/** `--progress=rawjson`: the events, one JSON object a line with its time (a log's bytes in base64), for tools. */
export class RawJsonProgress extends EventProgress {
  constructor(out: NodeJS.WritableStream) {
    super((event) => {
      const data = event.type === 'log' ? { ...event, data: event.data.toString('base64') } : event;
      out.write(`${JSON.stringify({ time: new Date().toISOString(), ...data })}\n`);
    });
  }
}

/** Every event to each of several displays (the CLI's, and the library's collector of step outcomes). */
export class TeeProgress implements Progress {
  constructor(private readonly all: readonly Progress[]) {}
  step(id: number, label: string) {
    for (const p of this.all) p.step(id, label);
  }
  output(id: number, chunk: Buffer) {
    for (const p of this.all) p.output(id, chunk);
  }
  status(id: number, line: string) {
    for (const p of this.all) p.status(id, line);
  }
  cacheMiss(id: number, miss: CacheMiss) {
    for (const p of this.all) p.cacheMiss(id, miss);
  }
  done(id: number, seconds: number, cached: boolean) {
    for (const p of this.all) p.done(id, seconds, cached);
  }
  failed(id: number, error?: string) {
    for (const p of this.all) p.failed(id, error);
  }
  info(line: string) {
    for (const p of this.all) p.info(line);
  }
  warning(line: string) {
    for (const p of this.all) p.warning(line);
  }
  checks(notes: readonly CheckNote[]) {
    for (const p of this.all) p.checks(notes);
  }
}

/**
 * `--progress=tty`: one line per step with its number, instruction and CACHED or its time; a RUN's
 * output shows live under it (each line cut to the terminal's width, so that folding knows how many
 * rows to take back) and is folded away when the step succeeds, kept when it fails. Once stages run
 * side by side and steps interleave, it writes as plain does.
 */
export class TtyProgress implements Progress {
  private current?: { id: number; label: string; rows: number; miss?: string };
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

  status(id: number, line: string) {
    if (this.current?.id !== id) this.interleaved.status(id, line);
    else this.writeLines([{ text: line, at: Date.now() }]);
  }

  /** Shown under the step while it runs, and kept on its line when it is done. */
  cacheMiss(id: number, miss: CacheMiss) {
    if (this.current?.id !== id) {
      this.interleaved.cacheMiss(id, miss);
      return;
    }
    this.current.miss = miss.reason;
    this.writeLines([{ text: `CACHE MISS: ${miss.reason}`, at: Date.now() }]);
  }

  private writeLines(lines: Line[]) {
    if (!this.current || lines.length === 0) return;
    this.out.write(lines.map(({ text: l }) => `\x1b[2m    ${this.fit(l.replace(/\r|\x1b\[[0-9;]*[A-Za-z]/g, ''), this.width - 5)}\x1b[0m\n`).join(''));
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
    const head = ` => ${cached ? 'CACHED ' : ''}[${id}] ${this.fit(c.label, this.width - 20)}${cached ? '' : `  ${seconds.toFixed(1)}s`}`;
    const miss = c.miss ? `\x1b[2m  (${this.fit(c.miss, Math.max(10, this.width - head.length - 4))})\x1b[0m` : '';
    this.out.write(`\x1b[${c.rows + 1}A\x1b[J${head}${miss}\n`);
    this.current = undefined;
  }

  failed(id: number, error?: string) {
    this.active.delete(id);
    if (this.current?.id === id) this.writeLines(this.split.flush(id));
    else this.interleaved.failed(id, error);
    this.out.write(error === undefined ? ` => CANCELED [${id}]\n` : `\x1b[31m => ERROR [${id}] ${error}\x1b[0m\n`);
    this.current = undefined;
  }

  info(line: string) {
    this.out.write(` => ${line}\n`);
  }

  warning(line: string) {
    this.out.write(`\x1b[33m WARNING: ${line}\x1b[0m\n`);
  }

  checks(notes: readonly CheckNote[]) {
    this.out.write(checkSummary(notes, true));
  }
}

/** The display for a mode, writing to `stream()` (asked for only when something is shown: process.stderr on a pipe costs loading node:net). */
export function makeProgress(mode: ProgressMode, stream: () => NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  if (mode === 'quiet') return new QuietProgress();
  const out = stream();
  switch (mode) {
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

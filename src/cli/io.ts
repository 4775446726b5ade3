/** Where a command writes: its result lines, its messages, and the signal that stops it. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  signal?: AbortSignal;
  /** Set by a command that ends without an error but with a status (`--check` with warnings). */
  exitCode?: number;
}

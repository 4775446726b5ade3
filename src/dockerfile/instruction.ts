import type { SourceLocation } from '../errors.js';

/** One Dockerfile instruction as parsed: the keyword, its flags, and its argument text. */
export interface Instruction {
  /** Upper-case keyword: RUN, COPY, ... */
  keyword: string;
  /** `--name=value` flags before the arguments, in order. */
  flags: Array<{ name: string; value: string | undefined }>;
  /** Argument text with line continuations joined and comment lines removed, flags excluded. */
  args: string;
  /** The arguments as a JSON string array, when written in JSON (exec) form. */
  json?: string[];
  location: SourceLocation;
  /** The instruction's source text (first line), for error messages. */
  source: string;
}

export interface ParsedDockerfile {
  file: string;
  escape: string;
  instructions: Instruction[];
}

/** Parses `["a", "b"]` as Docker does: only a JSON array of strings counts; anything else is shell form. */
export function parseJsonForm(args: string): string[] | undefined {
  const trimmed = args.trim();
  if (!trimmed.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(trimmed);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    return undefined;
  }
  return undefined;
}

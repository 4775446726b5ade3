// The errors tsbuild reports: one line each, with the Dockerfile location and a cause chain.
/** Where in a Dockerfile something went wrong (1-based lines). */
export interface SourceLocation {
  file: string;
  line: number;
  endLine?: number;
}

/**
 * The base of every error tsbuild reports to a user. `message` is one line; `cause` keeps the chain
 * (a system error, a failed process) for `--debug` output; `location` names the Dockerfile line.
 */
export class TsbuildError extends Error {
  readonly location?: SourceLocation;
  readonly exitCode: number;

  constructor(message: string, options: { cause?: unknown; location?: SourceLocation; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.location = options.location;
    this.exitCode = options.exitCode ?? 1;
  }

  /** `Dockerfile:12: message`, or the message alone when no line is involved. */
  format(): string {
    if (!this.location) return this.message;
    return `${this.location.file}:${this.location.line}: ${this.message}`;
  }
}

/** The Dockerfile itself is wrong: syntax, unknown or unsupported instruction, bad flag. */
export class DockerfileError extends TsbuildError {}

/** A build step failed while running (RUN exit code, COPY source missing, ...). */
export class BuildStepError extends TsbuildError {}

/** The user asked for something that cannot be (bad flag, missing file, unknown image). */
export class UsageError extends TsbuildError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 1 });
  }
}

/** An image name that the store does not hold. */
export class ImageNotFoundError extends TsbuildError {}

/** Content in the store or in an input archive does not match its digest or is malformed. */
export class IntegrityError extends TsbuildError {}

/** The build was interrupted (Ctrl-C, SIGTERM). */
export class InterruptedError extends TsbuildError {
  constructor(signal: string) {
    super(`interrupted by ${signal}`, { exitCode: signal === 'SIGINT' ? 130 : 143 });
  }
}

/** Node's system errors carry a code such as ENOENT; this reads it without `any`. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** A registry refused or failed a request (unreachable, 401/403, unknown name, 5xx after retries). */
export class RegistryError extends TsbuildError {
  constructor(
    message: string,
    readonly status?: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

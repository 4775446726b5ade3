// `tsbuild build --check` (and --call=check[,format=json][,ignorestatus=true]): the build checks, no build.
import { checkDockerfile } from '../../api/check.js';
import { checkJson, checkText } from '../../check/report.js';
import { UsageError } from '../../errors.js';
import type { Io } from '../io.js';
import { registryOptions, type RegistryFlags } from '../registry-flags.js';

/** `--call` as buildx parses it: a function (build or check) and its options. */
export function parseCall(value: string): { name: 'build' | 'check'; format: 'text' | 'json'; ignoreStatus: boolean } {
  const call = { name: 'build' as 'build' | 'check', format: 'text' as 'text' | 'json', ignoreStatus: false };
  let named = false;
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    if (eq < 0) {
      if (named) throw new UsageError(`invalid --call value: ${value}`);
      if (field !== 'build' && field !== 'check' && field !== 'lint') throw new UsageError(`invalid --call "${field}": build or check`);
      call.name = field === 'build' ? 'build' : 'check';
      named = true;
    } else if (field.slice(0, eq) === 'format') {
      const f = field.slice(eq + 1);
      if (f !== 'json' && f !== 'text' && f !== '') throw new UsageError(`invalid --call format "${f}": json or text`);
      call.format = f === 'json' ? 'json' : 'text';
    } else if (field.slice(0, eq) === 'ignorestatus') {
      const v = field.slice(eq + 1);
      if (!['true', 'false', '1', '0'].includes(v)) throw new UsageError(`invalid ignorestatus print value: ${v}`);
      call.ignoreStatus = v === 'true' || v === '1';
    } else throw new UsageError(`invalid print field: ${field}`);
  }
  return call;
}

export interface CheckFlags extends RegistryFlags {
  file?: string;
  buildArg: string[];
  target?: string;
  platform?: string;
  root?: string;
}

/**
 * Prints the checks' warnings on standard output (buildx's text, or BuildKit's JSON); exits 1
 * when there is one (as `docker build --check`), unless ignorestatus; a Dockerfile error, or
 * `error=true` with a warning, fails the command after the warnings.
 */
export async function checkCommand(context: string, flags: CheckFlags, buildArgs: Record<string, string | undefined>, call: ReturnType<typeof parseCall>, io: Io): Promise<void> {
  const outcome = await checkDockerfile({ context, file: flags.file, buildArgs, target: flags.target, platform: flags.platform, root: flags.root, registry: registryOptions(flags) });
  const { file, text, warnings, error } = outcome;
  if (call.format === 'json') {
    process.stdout.write(`${checkJson(file, text, warnings, error && { message: error.message, line: error.location?.line })}\n`);
  } else process.stdout.write(checkText(file, text, warnings, error !== undefined));
  if (error) throw error;
  if (warnings.length > 0 && !call.ignoreStatus) io.exitCode = 1;
}

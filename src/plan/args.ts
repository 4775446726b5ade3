// Build arguments: --build-arg values, platform ARGs, global ARGs.
import type { ArgInstruction } from '../dockerfile/instructions.js';
import { expandWord } from '../dockerfile/shell-words.js';
import { DockerfileError } from '../errors.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';

/** A declared ARG in scope: its name and value (undefined when declared without one). */
export interface ArgValue {
  key: string;
  value: string | undefined;
}

/** A --build-arg value: given explicitly, or (for `--build-arg K`) from tsbuild's environment. */
export function buildArgValue(buildArgs: Record<string, string | undefined> | undefined, key: string): string | undefined {
  if (!buildArgs || !(key in buildArgs)) return undefined;
  return buildArgs[key] ?? process.env[key];
}

/** BuildKit's automatic platform ARGs: global, usable in FROM, and in a stage once declared. TARGET* follow --platform. */
export function platformArgs(target: Platform = hostPlatform()): ArgValue[] {
  const build = hostPlatform();
  return [
    ['BUILDPLATFORM', formatPlatform(build)], ['BUILDOS', build.os], ['BUILDARCH', build.architecture], ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)], ['TARGETOS', target.os], ['TARGETARCH', target.architecture], ['TARGETVARIANT', target.variant ?? ''],
  ].map(([key, value]) => ({ key: key!, value }));
}

/** Values of the ARGs declared before the first FROM, with --build-arg overrides, after the platform ARGs. */
export function resolveGlobalArgs(args: readonly ArgInstruction[], buildArgs: Record<string, string | undefined> | undefined, escape: string, platform?: Platform): ArgValue[] {
  const out: ArgValue[] = platformArgs(platform);
  for (const ins of args) {
    for (const a of ins.args) {
      const env = (n: string) => out.find((x) => x.key === n)?.value;
      let declared: string | undefined;
      try {
        declared = a.value === undefined ? undefined : expandWord(a.value, env, escape);
      } catch (err) {
        throw new DockerfileError(`ARG: ${(err as Error).message}`, { location: ins.location, cause: err });
      }
      // a global ARG declared without a value has none, even for an automatic platform ARG (dockerd 20.10)
      const value = buildArgValue(buildArgs, a.key) ?? declared;
      out.splice(0, out.length, ...out.filter((x) => x.key !== a.key), { key: a.key, value });
    }
  }
  return out;
}

/** Looks a name up among ARG values, for expansion. */
export const argEnv = (args: readonly ArgValue[]) => (name: string) => args.find((a) => a.key === name)?.value;

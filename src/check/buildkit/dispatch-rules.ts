// The checks BuildKit makes as it converts each instruction of a stage it builds: UndefinedVar,
// WorkdirRelativePath, JSONArgsRecommended, MultipleInstructionsDisallowed, LegacyKeyValueFormat,
// SecretsUsedInArgOrEnv, CopyIgnoredFile, ExposeProtoCasing and ExposeInvalidFormat.
import type { Instruction } from '../../dockerfile/instructions.js';
import { cleanSource } from '../../dockerfile/dockerignore.js';
import type { Node } from '../../dockerfile/node.js';
import { goQuote } from '../../util/go-quote.js';
import { expandWords } from '../../dockerfile/shell-words.js';
import type { ArgValue } from '../../plan/args.js';
import { looksSecret } from '../../plan/secret-names.js';
import { nearest } from '../../util/suggest.js';
import type { Linter } from '../linter.js';
import { RULES } from '../rules.js';
import { tracked } from './from-rules.js';

/** What the checks know of a stage as its instructions go by (BuildKit's dispatch state). */
export interface StageLintState {
  /** The environment: the base's ENV, then ENV and ARG values, in the order they were last set. */
  env: Map<string, string>;
  /** Every ARG declared so far, with a value or not. */
  args: Set<string>;
  /** A WORKDIR was seen (in this stage or the one it is built on). */
  workdirSet: boolean;
  /** SHELL was set (here, in the stage it is built on, or in the base image's config). */
  shell: boolean;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A stage's starting state on an image with this config (scratch: none). */
export function stateOnImage(config: { Env?: string[]; Shell?: string[] } | undefined): StageLintState {
  const env = new Map<string, string>();
  for (const kv of config?.Env ?? []) {
    const eq = kv.indexOf('=');
    env.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  return { env, args: new Set(), workdirSet: false, shell: (config?.Shell?.length ?? 0) > 0 };
}

/** A stage built on another starts where that one ended. */
export function stateOnStage(parent: StageLintState): StageLintState {
  return { env: new Map(parent.env), args: new Set(parent.args), workdirSet: parent.workdirSet, shell: parent.shell };
}

export interface DispatchContext {
  escape: string;
  buildArgs: Record<string, string | undefined>;
  /** The global ARGs' values: a stage's `ARG NAME` takes its value from there. */
  globalArgs: readonly ArgValue[];
  linter: Linter;
  /** CopyIgnoredFile's test of a source (undefined where .dockerignore makes it not apply). */
  ignoresSource?: (src: string) => boolean | undefined;
}

const set = (env: Map<string, string>, key: string, value: string) => {
  env.delete(key);
  env.set(key, value);
};

/** `host:container/proto`, `ip:host:container`, IPv6 forms: BuildKit's splitParts. */
function exposeParts(raw: string): { ip: string; host: string; container: string } {
  const parts = raw.split(':');
  if (parts.length === 1) return { ip: '', host: '', container: raw };
  if (parts.length === 2) return { ip: '', host: parts[0]!, container: parts[1]! };
  if (parts.length === 3) return { ip: parts[0]!, host: parts[1]!, container: parts[2]! };
  const n = parts.length;
  return { ip: parts.slice(0, n - 2).join(':'), host: parts[n - 2]!, container: parts[n - 1]! };
}

/** Runs the dispatch checks over a stage's instructions; `nodeOf` gives each its parsed line (keyword as written, comments). */
export function dispatchStage(instructions: readonly Instruction[], nodeOf: (ins: Instruction) => Node, state: StageLintState, ctx: DispatchContext): StageLintState {
  const used = new Map<string, { location: Instruction['location'] }>();
  const { escape } = ctx;
  for (const ins of instructions) {
    const node = nodeOf(ins);
    const at = ctx.linter.at(node.comments);
    const defined = (name: string) => state.env.has(name) || state.args.has(name) || name === 'BUILDKIT_SBOM_SCAN_CONTEXT' || name === 'BUILDKIT_SBOM_SCAN_STAGE';
    /** Expands a word as BuildKit's dispatch does, warning of each undefined name it looks up. */
    const expand = (word: string, raw = false): string => {
      const lookup = (n: string) => (defined(n) ? (state.env.get(n) ?? '') : undefined);
      // a heredoc's content: BuildKit's escape there is always the backslash
      const result = tracked(word, lookup, raw ? '\\' : escape, raw);
      for (const name of result.unmatched) {
        const hint = nearest(name, state.env.keys(), true);
        at.warn(RULES.UndefinedVar, `Usage of undefined variable '$${name}'${hint ? ` (did you mean $${hint}?)` : ''}`, ins.location);
      }
      return result.value ?? word;
    };
    const once = (kind: string) => {
      const previous = used.get(kind);
      if (previous) at.warn(RULES.MultipleInstructionsDisallowed, `Multiple ${node.keyword} instructions should not be used in the same stage because only the last one will be used`, previous.location);
      used.set(kind, { location: ins.location });
    };
    switch (ins.keyword) {
      case 'ENV':
      case 'LABEL': {
        const pairs = ins.pairs.map((p) => ({ key: expand(p.key), value: expand(p.value) }));
        const legacy = node.values.length === 3 && node.values[2] === '';
        if (legacy) at.warn(RULES.LegacyKeyValueFormat, `"${node.keyword} key=value" should be used instead of legacy "${node.keyword} key value" format`, ins.location);
        if (ins.keyword === 'ENV') {
          for (const p of pairs) if (looksSecret(p.key)) at.warn(RULES.SecretsUsedInArgOrEnv, `Do not use ARG or ENV instructions for sensitive data (ENV ${goQuote(p.key)})`, ins.location);
          for (const p of pairs) set(state.env, p.key, p.value);
        }
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
        once(ins.keyword);
        if (ins.prependShell && !state.shell) at.warn(RULES.JSONArgsRecommended, `JSON arguments recommended for ${node.keyword} to prevent unintended behavior related to OS signals`, ins.location);
        break;
      case 'HEALTHCHECK':
        once('HEALTHCHECK');
        break;
      case 'SHELL':
        state.shell = true;
        break;
      case 'WORKDIR': {
        const dir = expand(ins.value);
        if (!state.workdirSet && !dir.startsWith('/')) at.warn(RULES.WorkdirRelativePath, `Relative workdir ${goQuote(dir)} can have unexpected results if the base image changes`, ins.location);
        state.workdirSet = true;
        break;
      }
      case 'USER':
      case 'STOPSIGNAL':
        expand(ins.value);
        break;
      case 'VOLUME':
        for (const v of ins.values) expand(v);
        break;
      case 'RUN':
        for (const m of ins.mounts) for (const f of m.fields) if (f.value !== undefined) expand(f.value);
        break;
      case 'COPY':
      case 'ADD': {
        if (ins.chown !== undefined) expand(ins.chown);
        if (ins.chmod !== undefined) expand(ins.chmod);
        if (ins.checksum !== undefined) expand(ins.checksum);
        const sources = ins.sources.map((s) => expand(s));
        expand(ins.dest);
        for (const doc of ins.inline) if (doc.expand) expand(doc.content, true);
        if (ins.from === undefined && ctx.ignoresSource) {
          for (const src of sources) {
            if (/^(https?:\/\/|git@)/.test(src)) continue;
            if (ctx.ignoresSource(src) !== true) continue;
            at.warn(RULES.CopyIgnoredFile, `Attempting to ${ins.keyword === 'ADD' ? 'Add' : 'Copy'} file ${goQuote(cleanSource(src))} that is excluded by .dockerignore`, ins.location);
          }
        }
        break;
      }
      case 'EXPOSE':
        for (const raw of [...ins.values].sort()) {
          let words: string[];
          try {
            words = expandWords(raw, (n) => state.env.get(n), escape);
          } catch {
            words = [raw];
          }
          for (const port of words) {
            const { ip, host, container } = exposeParts(port);
            const proto = container.includes('/') ? container.slice(container.indexOf('/') + 1) : '';
            if (proto !== proto.toLowerCase()) at.warn(RULES.ExposeProtoCasing, `Defined protocol '${port}' in EXPOSE instruction should be lowercase`, ins.location);
            if (ip !== '' || host !== '') at.warn(RULES.ExposeInvalidFormat, `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`, ins.location);
          }
        }
        break;
      case 'ARG':
        for (const a of ins.args) {
          if (looksSecret(a.key)) at.warn(RULES.SecretsUsedInArgOrEnv, `Do not use ARG or ENV instructions for sensitive data (ARG ${goQuote(a.key)})`, ins.location);
          const given = a.key in ctx.buildArgs ? (ctx.buildArgs[a.key] ?? process.env[a.key]) : undefined;
          const declared = given === undefined && a.value !== undefined ? expand(a.value) : undefined;
          const value = given ?? declared ?? ctx.globalArgs.find((g) => g.key === a.key)?.value;
          state.args.add(a.key);
          if (value !== undefined) set(state.env, a.key, value);
        }
        break;
      default:
        break;
    }
  }
  return state;
}

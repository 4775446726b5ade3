// Variable expansion of an instruction's words, in one place before its handler runs.
import type { Instruction, RunInstruction } from '../dockerfile/instructions.js';
import { expandRunMount, type RunMount } from '../dockerfile/run-mount.js';
import { expandRaw, expandWord, expandWords, ShellWordError, type Env } from '../dockerfile/shell-words.js';
import { DockerfileError } from '../errors.js';

/** RUN with its mounts typed and expanded. */
export type ExpandedRun = Omit<RunInstruction, 'mounts'> & { mounts: RunMount[] };

/** An instruction as its handler receives it: every word Docker expands, expanded. */
export type ExpandedInstruction = Exclude<Instruction, RunInstruction> | ExpandedRun;

/**
 * Expands an instruction's words in one place before its handler runs, as BuildKit's dispatch()
 * does (SupportsSingleWordExpansion): with the stage's environment, except COPY --from, which only
 * global ARGs reach. ENV expands every pair against the environment before it. ARG is left as it
 * is: each of its defaults sees the ARGs declared before it on the same line, and --build-arg
 * values win, so its handler expands them one by one (BuildKit's dispatchArg). CMD, ENTRYPOINT,
 * SHELL, HEALTHCHECK, ONBUILD and MAINTAINER are never expanded; RUN's command is the shell's.
 */
export function expandInstruction(ins: Instruction, env: Env, globalEnv: Env, escape: string): ExpandedInstruction {
  // an expansion error names the instruction's line
  const located = <T>(expansion: () => T): T => {
    try {
      return expansion();
    } catch (err) {
      if (err instanceof ShellWordError) throw new DockerfileError(`${ins.keyword}: ${err.message}`, { location: ins.location, cause: err });
      throw err;
    }
  };
  const word = (w: string, e: Env = env) => located(() => expandWord(w, e, escape));
  const optional = (w: string | undefined) => (w === undefined ? undefined : word(w));
  switch (ins.keyword) {
    case 'RUN':
      return { ...ins, mounts: ins.mounts.map((m) => expandRunMount(m, (v) => word(v), ins.location)), network: optional(ins.network) };
    case 'COPY':
    case 'ADD': {
      const inline = ins.inline.map((doc) => ({ ...doc, content: doc.expand ? located(() => expandRaw(doc.content, env)) : doc.content }));
      return {
        ...ins,
        sources: ins.sources.map((s) => word(s)),
        dest: word(ins.dest),
        from: ins.from === undefined ? undefined : word(ins.from, globalEnv),
        chown: optional(ins.chown),
        chmod: optional(ins.chmod),
        checksum: optional(ins.checksum),
        inline,
      };
    }
    case 'ENV':
    case 'LABEL':
      return { ...ins, pairs: ins.pairs.map((p) => ({ key: word(p.key), value: word(p.value) })) };
    case 'USER':
    case 'STOPSIGNAL':
    case 'WORKDIR':
      return { ...ins, value: word(ins.value) };
    case 'EXPOSE':
      return { ...ins, values: ins.values.flatMap((v) => located(() => expandWords(v, env, escape))) };
    case 'VOLUME':
      return { ...ins, values: ins.values.map((v) => word(v)) };
    default:
      return ins;
  }
}

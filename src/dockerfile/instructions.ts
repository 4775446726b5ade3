// Typed instructions from parsed lines, with BuildKit's argument rules and errors.
import { parseDuration } from '../util/units.js';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { parseRunMountSpec, type RunMountSpec } from './run-mount.js';
import { parseFlags, type FlagValues } from './flags.js';
import type { Heredoc, Node } from './node.js';

/** What all typed instructions carry. */
interface Base {
  /** Upper-case keyword. */
  keyword: string;
  location: SourceLocation;
  /** The instruction line as written (continuations joined), for messages and ONBUILD. */
  original: string;
  flags: FlagValues;
}

/** RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK CMD: exec form as written, or shell form to prepend the shell to. */
export interface CommandLine {
  args: string[];
  prependShell: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface FromInstruction extends Base {
  keyword: 'FROM';
  base: string;
  stageName?: string;
  platform?: string;
}
export interface RunInstruction extends Base, CommandLine {
  keyword: 'RUN';
  heredocs: Heredoc[];
  /** --mount, split into fields once here; expanded when the step runs. */
  mounts: RunMountSpec[];
  network?: string;
}
export interface CmdInstruction extends Base, CommandLine {
  keyword: 'CMD' | 'ENTRYPOINT';
}
export interface CopyInstruction extends Base {
  keyword: 'COPY' | 'ADD';
  sources: string[];
  /** Heredoc sources: file name, content, whether to expand variables in it. */
  inline: Array<{ name: string; content: string; expand: boolean }>;
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  checksum?: string;
  keepGitDir?: boolean;
  unpack?: boolean;
  excludes: string[];
}
export interface PairsInstruction extends Base {
  keyword: 'ENV' | 'LABEL';
  pairs: KeyValue[];
}
export interface ArgInstruction extends Base {
  keyword: 'ARG';
  args: Array<{ key: string; value?: string }>;
}
export interface WordInstruction extends Base {
  keyword: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER';
  value: string;
}
export interface ListInstruction extends Base {
  keyword: 'EXPOSE' | 'VOLUME';
  values: string[];
}
export interface ShellInstruction extends Base {
  keyword: 'SHELL';
  shell: string[];
}
export interface HealthcheckInstruction extends Base {
  keyword: 'HEALTHCHECK';
  /** Docker's HealthConfig: Test is ["NONE"], ["CMD", ...] or ["CMD-SHELL", cmd]; durations in ns. */
  health: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
}
export interface OnbuildInstruction extends Base {
  keyword: 'ONBUILD';
  /** The trigger as written, kept for the image config and run when the image is a base. */
  expression: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | CopyInstruction
  | PairsInstruction
  | ArgInstruction
  | WordInstruction
  | ListInstruction
  | ShellInstruction
  | HealthcheckInstruction
  | OnbuildInstruction;

/** Every instruction keyword, for "did you mean" when a keyword is not one. */
const INSTRUCTIONS = ['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'];

const HEREDOC_ARG = /^(\d*)<<(-?)\s*([^<]*)$/;

function err(node: Node, message: string): never {
  throw new DockerfileError(message, { location: node.location });
}

/** Exec form as is; shell form joined into the one command string. */
function commandLine(node: Node): CommandLine {
  return node.json ? { args: node.values, prependShell: false } : { args: node.values.length ? [node.values.join(' ')] : [], prependShell: true };
}

const atLeastOne = (node: Node, kw: string) => node.values.length === 0 && err(node, `${kw} requires at least one argument`);
const exactlyOne = (node: Node, kw: string) => node.values.length !== 1 && err(node, `${kw} requires exactly one argument`);

function copyOrAdd(node: Node, keyword: 'COPY' | 'ADD', base: Omit<Base, 'flags'>): CopyInstruction {
  if (node.values.length < 2) err(node, `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`);
  const flags = parseFlags(keyword, node.flags, keyword === 'COPY'
    ? { chown: 'string', chmod: 'string', from: 'string', link: 'bool', exclude: 'strings', parents: 'bool' }
    : { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', unpack: 'bool', exclude: 'strings' }, node.location);
  const dest = node.values.at(-1)!;
  if (HEREDOC_ARG.test(dest) && !node.json) err(node, `${keyword} cannot accept a heredoc as a destination`);
  const sources: string[] = [];
  const inline: CopyInstruction['inline'] = [];
  for (const src of node.values.slice(0, -1)) {
    const m = node.json ? null : HEREDOC_ARG.exec(src);
    const doc = m ? node.heredocs.find((h) => h.name === m[3]!.replace(/['"]/g, '')) : undefined;
    if (doc) {
      inline.push({ name: doc.name, content: doc.chomp ? doc.content.replace(/^\t+/gm, '') : doc.content, expand: doc.expand });
    } else sources.push(src);
  }
  return {
    ...base,
    keyword,
    flags,
    sources,
    inline,
    dest,
    from: flags.string('from'),
    chown: flags.string('chown'),
    chmod: flags.string('chmod'),
    link: flags.bool('link'),
    checksum: flags.string('checksum'),
    keepGitDir: flags.used('keep-git-dir') ? flags.bool('keep-git-dir') : undefined,
    unpack: flags.used('unpack') ? flags.bool('unpack') : undefined,
    excludes: flags.strings('exclude'),
  };
}

/**
 * Turns a parser node into a typed instruction with BuildKit's argument rules and errors
 * (frontend/dockerfile/instructions/parse.go). Unknown keywords are an error naming the line.
 */
export function toInstruction(node: Node): Instruction {
  const keyword = node.keyword.toUpperCase();
  const base = { keyword, location: node.location, original: node.original.trim() };
  const noFlags = () => parseFlags(keyword, node.flags, {}, node.location);
  switch (keyword) {
    case 'FROM': {
      const flags = parseFlags(keyword, node.flags, { platform: 'string' }, node.location);
      const v = node.values;
      let stageName: string | undefined;
      if (v.length === 3 && v[1]!.toLowerCase() === 'as') {
        stageName = v[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) err(node, `invalid name for build stage: "${v[2]}", name can't start with a number or contain symbols`);
      } else if (v.length !== 1) err(node, 'FROM requires either one or three arguments');
      return { ...base, keyword, flags, base: v[0]!, stageName, platform: flags.string('platform') };
    }
    case 'RUN': {
      const flags = parseFlags(keyword, node.flags, { mount: 'strings', network: 'string', security: 'string' }, node.location);
      const cl = commandLine(node);
      if (cl.args.length === 0 && node.heredocs.length === 0) err(node, 'RUN requires at least one argument');
      return { ...base, keyword, flags, ...cl, heredocs: node.heredocs, mounts: flags.strings('mount').map((m) => parseRunMountSpec(m, base.location)), network: flags.string('network') };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      return { ...base, keyword, flags: noFlags(), ...commandLine(node) };
    case 'COPY':
    case 'ADD':
      return copyOrAdd(node, keyword, base);
    case 'ENV':
    case 'LABEL': {
      const flags = noFlags();
      if (node.values.length === 0) err(node, `${keyword} requires at least one argument`);
      const pairs: KeyValue[] = [];
      for (let i = 0; i < node.values.length; i += 3) {
        if (node.values[i] === '') err(node, `${keyword} names can not be blank`);
        pairs.push({ key: node.values[i]!, value: node.values[i + 1]! });
      }
      return { ...base, keyword, flags, pairs };
    }
    case 'ARG': {
      const flags = noFlags();
      atLeastOne(node, keyword);
      const args = node.values.map((w) => {
        const eq = w.indexOf('=');
        if (eq === 0) err(node, 'ARG names can not be blank');
        return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
      });
      return { ...base, keyword, flags, args };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER': {
      const flags = noFlags();
      exactlyOne(node, keyword);
      return { ...base, keyword, flags, value: node.values[0]! };
    }
    case 'EXPOSE':
    case 'VOLUME': {
      const flags = noFlags();
      atLeastOne(node, keyword);
      const values = keyword === 'EXPOSE' ? [...node.values].sort() : node.values.map((v) => v.trim());
      if (values.some((v) => v === '')) err(node, 'VOLUME specified can not be an empty string');
      return { ...base, keyword, flags, values };
    }
    case 'SHELL': {
      const flags = noFlags();
      if (node.values.length === 0) err(node, 'SHELL requires at least one argument');
      if (!node.json) err(node, `SHELL requires the arguments to be in JSON form: SHELL ["executable", "parameters"]`);
      return { ...base, keyword, flags, shell: node.values };
    }
    case 'HEALTHCHECK':
      return healthcheck(node, base);
    case 'ONBUILD': {
      const flags = noFlags();
      if (!node.sub) err(node, 'ONBUILD requires at least one argument');
      const trigger = node.sub.keyword.toUpperCase();
      if (trigger === 'ONBUILD') err(node, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') err(node, `${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      for (const h of node.heredocs) expression += `\n${h.content}${h.name}`;
      return { ...base, keyword, flags, expression };
    }
    default:
      throw new DockerfileError(didYouMean(`unknown instruction: ${node.keyword}`, node.keyword, INSTRUCTIONS, false), { location: node.location });
  }
}

function healthcheck(node: Node, base: Omit<Base, 'flags'>): HealthcheckInstruction {
  if (node.values.length === 0) err(node, 'HEALTHCHECK requires at least one argument');
  const type = node.values[0]!.toUpperCase();
  const args = node.values.slice(1);
  if (type === 'NONE') {
    if (args.length > 0) err(node, 'HEALTHCHECK NONE takes no arguments');
    return { ...base, keyword: 'HEALTHCHECK', flags: parseFlags('HEALTHCHECK', node.flags, {}, node.location), health: { Test: ['NONE'] } };
  }
  const flags = parseFlags('HEALTHCHECK', node.flags, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' }, node.location);
  if (type !== 'CMD') err(node, `Unknown type "${type}" in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? args : args.length ? [args.join(' ')] : [];
  if (cmd.length === 0) err(node, 'Missing command after HEALTHCHECK CMD');
  const interval = (name: string): number => {
    const v = flags.string(name);
    if (!v) return 0;
    let d: number;
    try {
      d = parseDuration(v);
    } catch (e) {
      err(node, (e as Error).message);
    }
    if (d !== 0 && d < 1e6) err(node, `Interval "${name}" cannot be less than 1ms`);
    return d;
  };
  let retries = 0;
  const r = flags.string('retries');
  if (r !== undefined && r !== '') {
    if (!/^-?\d+$/.test(r)) err(node, `strconv.ParseInt: parsing "${r}": invalid syntax`);
    retries = Number(r);
    if (retries < 0) err(node, `--retries cannot be negative (${retries})`);
  }
  return {
    ...base,
    keyword: 'HEALTHCHECK',
    flags,
    health: {
      Test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd],
      Interval: interval('interval'),
      Timeout: interval('timeout'),
      StartPeriod: interval('start-period'),
      StartInterval: interval('start-interval'),
      Retries: retries,
    },
  };
}

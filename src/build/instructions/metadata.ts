import { expandWords } from '../../dockerfile/shell-words.js';
import { envSet } from '../../image/config.js';
import { fail, type StepContext } from '../step-context.js';
import { expand, parseKeyValues, splitWordsKeepingQuotes } from './key-values.js';

/** Go's %q of a []string, as BuildKit writes CMD and ENTRYPOINT into history. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

function noFlags(ctx: StepContext): void {
  if (ctx.ins.flags.length > 0) fail(ctx, `${ctx.ins.keyword} does not take --${ctx.ins.flags[0]!.name}`);
}

/** Exec form as written, or shell form through the image's shell. */
export function commandLine(ctx: StepContext): { argv: string[]; shellForm: boolean } {
  if (ctx.ins.json) return { argv: ctx.ins.json, shellForm: false };
  const shell = ctx.state.config.config.Shell ?? ['/bin/sh', '-c'];
  return { argv: [...shell, ctx.ins.args.trim()], shellForm: true };
}

export function env(ctx: StepContext): void {
  noFlags(ctx);
  const pairs = parseKeyValues(ctx, true);
  let list = ctx.state.config.config.Env ?? [];
  for (const { key, value } of pairs) list = envSet(list, key, value);
  ctx.state.setRuntime({ Env: list });
  ctx.state.addHistory(`ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
}

export function label(ctx: StepContext): void {
  noFlags(ctx);
  const pairs = parseKeyValues(ctx, true);
  const labels = { ...(ctx.state.config.config.Labels ?? {}) };
  for (const { key, value } of pairs) labels[key] = value;
  ctx.state.setRuntime({ Labels: labels });
  ctx.state.addHistory(`LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
}

export function arg(ctx: StepContext): void {
  noFlags(ctx);
  const words = splitWordsKeepingQuotes(ctx.ins.args, ctx.escape);
  if (words.length === 0) fail(ctx, 'ARG requires at least one argument');
  const parts: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(ctx, `ARG: invalid name "${key}"`);
    const declared = eq < 0 ? undefined : expand(ctx, w.slice(eq + 1));
    const fromCli = buildArgValue(ctx, key);
    const inherited = ctx.state.globalArgs.find((a) => a.key === key)?.value;
    const value = fromCli ?? declared ?? inherited;
    ctx.state.args = [...ctx.state.args.filter((a) => a.key !== key), { key, value }];
    parts.push(declared === undefined ? key : `${key}=${declared}`);
  }
  ctx.state.addHistory(`ARG ${parts.join(' ')}`);
}

/** A --build-arg value: given explicitly, or (for `--build-arg K`) from tsbuild's environment. */
export function buildArgValue(ctx: StepContext, key: string): string | undefined {
  const args = ctx.options.buildArgs ?? {};
  if (!(key in args)) return undefined;
  return args[key] ?? process.env[key];
}

export function workdirPath(ctx: StepContext): string {
  const raw = expand(ctx, ctx.ins.args.trim());
  if (raw === '') fail(ctx, 'WORKDIR requires exactly one argument');
  const base = ctx.state.config.config.WorkingDir || '/';
  return raw.startsWith('/') ? normalizeAbs(raw) : normalizeAbs(`${base}/${raw}`);
}

function normalizeAbs(p: string): string {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return `/${parts.join('/')}`;
}

export function user(ctx: StepContext): void {
  noFlags(ctx);
  const value = expand(ctx, ctx.ins.args.trim());
  if (value === '') fail(ctx, 'USER requires exactly one argument');
  ctx.state.setRuntime({ User: value });
  ctx.state.addHistory(`USER ${value}`);
}

export function cmd(ctx: StepContext): void {
  noFlags(ctx);
  const { argv, shellForm } = commandLine(ctx);
  ctx.state.setRuntime({ Cmd: argv, ...(shellForm ? { ArgsEscaped: true } : {}) });
  ctx.state.cmdSet = true;
  ctx.state.addHistory(`CMD ${goQuoteList(argv)}`);
}

export function entrypoint(ctx: StepContext): void {
  noFlags(ctx);
  const { argv, shellForm } = commandLine(ctx);
  const patch: Record<string, unknown> = { Entrypoint: argv, ...(shellForm ? { ArgsEscaped: true } : {}) };
  if (!ctx.state.cmdSet) patch.Cmd = undefined; // an inherited CMD does not survive a new ENTRYPOINT
  ctx.state.setRuntime(patch);
  ctx.state.addHistory(`ENTRYPOINT ${goQuoteList(argv)}`);
}

export function expose(ctx: StepContext): void {
  noFlags(ctx);
  let words: string[];
  try {
    words = expandWords(ctx.ins.args, ctx.state.expansionEnv(), ctx.escape);
  } catch (err) {
    fail(ctx, `EXPOSE: ${(err as Error).message}`, err);
  }
  if (words.length === 0) fail(ctx, 'EXPOSE requires at least one argument');
  const ports: Record<string, Record<string, never>> = {};
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) fail(ctx, `EXPOSE: invalid port "${w}"`);
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    if (from > 65535 || to > 65535 || to < from) fail(ctx, `EXPOSE: invalid port range "${w}"`);
    for (let p = from; p <= to; p++) ports[`${p}/${(m[3] ?? 'tcp').toLowerCase()}`] = {};
  }
  ctx.state.setRuntime({ ExposedPorts: { ...(ctx.state.config.config.ExposedPorts ?? {}), ...ports } });
  const sorted = Object.keys(ports).sort();
  ctx.state.addHistory(`EXPOSE map[${sorted.map((p) => `${p}:{}`).join(' ')}]`);
}

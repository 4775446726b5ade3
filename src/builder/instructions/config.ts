// The metadata instructions: ENV, LABEL, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME, SHELL, ...
import type {
  CmdInstruction,
  HealthcheckInstruction,
  ListInstruction,
  OnbuildInstruction,
  PairsInstruction,
  ShellInstruction,
  WordInstruction,
} from '../../dockerfile/instructions.js';
import { fail, type StepContext } from '../step-context.js';

/**
 * The instructions that change only the image config: each records a history entry with
 * `empty_layer`, in BuildKit's `created_by` form.
 */

/** Go's %q of a []string: `["a" "b"]`. */
export function goQuoteList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

/** The shell that shell-form commands run through: the image's SHELL, or /bin/sh -c. */
export function shellOf(ctx: StepContext): string[] {
  return ctx.state.config.config.Shell ?? ['/bin/sh', '-c'];
}

export function env(ctx: StepContext, ins: PairsInstruction): void {
  const parts: string[] = [];
  for (const { key, value } of ins.pairs) {
    ctx.state.setEnv(key, value);
    parts.push(`${key}=${value}`);
  }
  ctx.state.addHistory(`ENV ${parts.join(' ')}`);
}

export function label(ctx: StepContext, ins: PairsInstruction): void {
  const labels = { ...(ctx.state.config.config.Labels ?? {}) };
  const parts: string[] = [];
  for (const { key, value } of ins.pairs) {
    labels[key] = value;
    parts.push(`${key}=${value}`);
  }
  ctx.state.setRuntime({ Labels: labels });
  ctx.state.addHistory(`LABEL ${parts.join(' ')}`);
}

export function user(ctx: StepContext, ins: WordInstruction): void {
  const { value } = ins;
  ctx.state.setRuntime({ User: value });
  ctx.state.addHistory(`USER ${value}`);
}

export function stopSignal(ctx: StepContext, ins: WordInstruction): void {
  const { value } = ins;
  if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(value)) fail(ctx, `STOPSIGNAL: invalid signal "${value}"`);
  ctx.state.setRuntime({ StopSignal: value });
  ctx.state.addHistory(`STOPSIGNAL ${value}`);
}

export function maintainer(ctx: StepContext, ins: WordInstruction): void {
  ctx.state.config = { ...ctx.state.config, author: ins.value };
  ctx.state.addHistory(`MAINTAINER ${ins.value}`);
}

function commandArgs(ctx: StepContext, ins: CmdInstruction): string[] {
  return ins.prependShell ? [...shellOf(ctx), ...ins.args] : ins.args;
}

export function cmd(ctx: StepContext, ins: CmdInstruction): void {
  const args = commandArgs(ctx, ins);
  ctx.state.setRuntime({ Cmd: args, ...(ins.prependShell ? { ArgsEscaped: true } : {}) });
  ctx.state.cmdSet = true;
  ctx.state.addHistory(`CMD ${goQuoteList(args)}`);
}

export function entrypoint(ctx: StepContext, ins: CmdInstruction): void {
  const args = commandArgs(ctx, ins);
  const patch: Record<string, unknown> = { Entrypoint: args, ...(ins.prependShell ? { ArgsEscaped: true } : {}) };
  if (!ctx.state.cmdSet) patch.Cmd = undefined; // an inherited CMD does not survive a new ENTRYPOINT
  ctx.state.setRuntime(patch);
  ctx.state.addHistory(`ENTRYPOINT ${goQuoteList(args)}`);
}

export function expose(ctx: StepContext, ins: ListInstruction): void {
  const ports: Record<string, Record<string, never>> = {};
  for (const w of ins.values) {
    const m = /^(?:[^:]*:)?(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) fail(ctx, `EXPOSE: invalid containerPort: ${w}`);
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    if (from > 65535 || to > 65535 || to < from) fail(ctx, `EXPOSE: invalid port range: ${w}`);
    for (let p = from; p <= to; p++) ports[`${p}/${(m[3] ?? 'tcp').toLowerCase()}`] = {};
  }
  ctx.state.setRuntime({ ExposedPorts: { ...(ctx.state.config.config.ExposedPorts ?? {}), ...ports } });
  const sorted = Object.keys(ports).sort();
  ctx.state.addHistory(`EXPOSE map[${sorted.map((p) => `${p}:{}`).join(' ')}]`);
}

export function volume(ctx: StepContext, ins: ListInstruction): void {
  const volumes = { ...(ctx.state.config.config.Volumes ?? {}) };
  const added = ins.values;
  for (const v of added) {
    if (v.trim() === '') fail(ctx, 'VOLUME specified can not be an empty string');
    volumes[v] = {};
  }
  ctx.state.setRuntime({ Volumes: volumes });
  ctx.state.addHistory(`VOLUME [${added.join(' ')}]`);
}

export function shell(ctx: StepContext, ins: ShellInstruction): void {
  ctx.state.setRuntime({ Shell: ins.shell });
  ctx.state.addHistory(`SHELL [${ins.shell.join(' ')}]`);
}

/** Go's time.Duration String(): 1m30s, 500ms, 0s. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${trimFloat(ns / 1e3)}\u00b5s`;
  if (ns < 1e9) return `${trimFloat(ns / 1e6)}ms`;
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trimFloat(Number(s.toFixed(9)))}s`;
}

function trimFloat(n: number): string {
  return String(Number(n.toFixed(9)));
}

export function healthcheck(ctx: StepContext, ins: HealthcheckInstruction): void {
  const h = ins.health;
  // zero durations and retries are omitted, as Go's omitempty does
  ctx.state.setRuntime({ Healthcheck: Object.fromEntries(Object.entries(h).filter(([k, v]) => k === 'Test' || v)) });
  const shown =
    h.Test[0] === 'NONE'
      ? `{Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}`
      : `{Test:[${h.Test.join(' ')}] Interval:${goDuration(h.Interval ?? 0)} Timeout:${goDuration(h.Timeout ?? 0)} StartPeriod:${goDuration(h.StartPeriod ?? 0)} StartInterval:${goDuration(h.StartInterval ?? 0)} Retries:${h.Retries ?? 0}}`;
  ctx.state.addHistory(`HEALTHCHECK ${shown}`);
}

export function onbuild(ctx: StepContext, ins: OnbuildInstruction): void {
  ctx.state.setRuntime({ OnBuild: [...(ctx.state.config.config.OnBuild ?? []), ins.expression] });
}

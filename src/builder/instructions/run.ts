// RUN: the command line and its cache key; a step that misses runs in run-step.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ExpandedRun } from '../expand-instruction.js';
import { heredocsInLine } from '../../dockerfile/parse.js';
import { envGet } from '../../image/config.js';
import { cachedStep, fail, type StepContext } from '../step-context.js';
import { mountKeys } from '../run-mounts.js';
import { buildArgValue } from '../../plan/args.js';
import { shellOf } from './config.js';
import type { RunCommand } from './run-step.js';

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** BuildKit's history form: `RUN |2 A=1 B=2 /bin/sh -c cmd # buildkit`. */
function createdBy(ctx: StepContext, argv: string[]): string {
  const byKey = new Map<string, string>();
  for (const a of ctx.state.args) byKey.set(a.key, envGet(ctx.state.env, a.key) ?? a.value ?? '');
  const args = [...byKey].map(([k, v]) => `${k}=${v}`);
  const prefix = args.length > 0 ? [`|${args.length}`, ...args] : [];
  return `RUN ${[...prefix, ...argv].join(' ')} # buildkit`;
}

type Script = Pick<RunCommand, 'argv' | 'pipe'>;

/**
 * The command line a RUN executes. Heredocs: `RUN <<EOF` alone runs the document as the script
 * (a file with its own #! interpreter when it has one); otherwise the shell gets the command with
 * the documents appended, as written.
 */
function script(ctx: StepContext, ins: ExpandedRun): Script {
  let args = ins.args;
  let pipe: Script['pipe'];
  if (ins.heredocs.length > 0) {
    if (args.length !== 1 || !ins.prependShell) fail(ctx, `parsing produced an invalid run command: ${args.join(' ')}`);
    const only = heredocsInLine(args[0]!.trim());
    const doc = ins.heredocs[0]!;
    if (only.length === 1 && args[0]!.trim().split(/\s+/).length === 1) {
      const data = doc.chomp ? doc.content.replace(/^\t+/gm, '') : doc.content;
      if (data.startsWith('#!')) {
        const hostFile = path.join(ctx.stepDir, `pipe-${doc.name}`);
        writeFileSync(hostFile, data, { mode: 0o755 });
        pipe = { name: doc.name, hostFile };
        args = [`/dev/pipes/${doc.name}`];
      } else args = [data];
    } else {
      args = [args[0] + ins.heredocs.map((h) => `\n${h.content}${h.name}`).join('')];
    }
  }
  return { argv: ins.prependShell ? [...shellOf(ctx), ...args] : args, pipe };
}

export async function run(ctx: StepContext, ins: ExpandedRun): Promise<void> {
  const security = ins.flags.string('security') ?? 'sandbox';
  if (security !== 'sandbox' && security !== 'insecure') fail(ctx, `security mode "${security}" is not supported (sandbox or insecure)`);
  if (security === 'insecure' && !ctx.options.allow?.includes('security.insecure')) {
    fail(ctx, 'RUN --security=insecure needs --allow security.insecure: the step would run with every capability and no seccomp filter');
  }
  const network = ins.network ?? ctx.options.network ?? 'default';
  if (!['none', 'host', 'default'].includes(network)) fail(ctx, `unsupported network mode "${network}" (none, host or default)`);
  const { argv, pipe } = script(ctx, ins);
  const config = ctx.state.config.config;
  const proxies = PROXY_ARGS.flatMap((k) => {
    const v = buildArgValue(ctx.options.buildArgs, k);
    return v === undefined ? [] : [[k, v] as const];
  });
  const material = {
    argv,
    script: pipe ? readFileSync(pipe.hostFile, 'utf8') : undefined,
    env: ctx.state.env,
    user: config.User,
    workdir: config.WorkingDir,
    network,
    ...(security === 'insecure' ? { security } : {}), // keys of sandboxed steps stay as they were
    proxies,
    mounts: await mountKeys(ctx, ins),
    createdBy: createdBy(ctx, argv), // the history text a hit reuses
  };
  // the sandbox's code loads when a step runs: a fully cached build never evaluates it
  await cachedStep(ctx, material, async () => (await import('./run-step.js')).runStep(ctx, ins, { argv, pipe, network, proxies, createdBy: material.createdBy }));
}

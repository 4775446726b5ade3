// --on-error=shell: a shell where a RUN failed, as buildx debug --on=error opens one.
import type { SandboxSpec } from '../../sandbox/run.js';
import { runInSandbox } from '../../sandbox/run.js';
import type { StepContext } from '../step-context.js';

/**
 * Opens an interactive shell in the failed step's filesystem as the command left it (the same
 * overlay, upper dir included), with the step's environment, working directory, user, mounts and
 * network; the build then fails with the command's error. Without a terminal it says so, and
 * opens nothing.
 */
export async function debugShell(ctx: StepContext, spec: SandboxSpec, runtime: string | undefined): Promise<void> {
  if (!process.stdin.isTTY) {
    ctx.status('--on-error=shell: standard input is not a terminal: no shell opened');
    return;
  }
  if (runtime) {
    ctx.status(`--on-error=shell: not with --runtime ${runtime}: no shell opened`);
    return;
  }
  const shell = ctx.state.config.config.Shell?.[0] ?? '/bin/sh';
  process.stderr.write(`\ntsbuild: the command failed; ${shell} opens in its filesystem as it left it (exit the shell to end the build)\n`);
  const result = await runInSandbox({ ...spec, argv: [shell], interactive: true, signal: undefined, cgroups: undefined });
  if (result.setupError) process.stderr.write(`tsbuild: --on-error=shell: ${result.setupError}\n`);
}

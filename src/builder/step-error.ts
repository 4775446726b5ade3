// Any failure of a step as one located line.
import type { Instruction } from '../dockerfile/instructions.js';
import { BuildStepError, errnoCode, InterruptedError, TsbuildError } from '../errors.js';

/**
 * Every failure of a step names its Dockerfile line. One tsbuild did not foresee (a system error)
 * says so, without the store's paths: the cause, with them, is kept for TSBUILD_DEBUG.
 */
export function located(err: unknown, ins: Instruction, storeRoot: string): unknown {
  if (err instanceof InterruptedError) return err;
  if (err instanceof TsbuildError) {
    return err.location ? err : new BuildStepError(err.message, { location: ins.location, cause: err, exitCode: err.exitCode });
  }
  if (errnoCode(err) === 'ENOSPC' || errnoCode(err) === 'EDQUOT') {
    return new BuildStepError(`${ins.keyword}: no space left on the store's filesystem (${storeRoot}): free some ('tsbuild prune') or give --root on a bigger one`, { location: ins.location, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  const shown = message.replace(new RegExp(`${storeRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(tmp/[^/'"\s]+/)?`, 'g'), '');
  return new BuildStepError(`${ins.keyword}: internal error: ${shown}`, { location: ins.location, cause: err });
}

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { WordInstruction } from '../../dockerfile/instructions.js';
import { expand } from '../expand.js';
import { materializeDir } from '../materialize-dir.js';
import { commitLayerDir, viewOf, type StepContext } from '../step-context.js';

/**
 * WORKDIR sets the working directory and, as BuildKit does, creates it in a layer of its own (an
 * empty layer when it already exists). `WORKDIR /` changes config only.
 */
export async function workdir(ctx: StepContext, ins: WordInstruction): Promise<void> {
  const raw = expand(ctx, ins.value);
  const dir = path.posix.resolve(ctx.state.config.config.WorkingDir || '/', raw);
  ctx.state.setRuntime({ WorkingDir: dir });
  if (dir === '/') {
    ctx.state.addHistory(`WORKDIR ${dir}`);
    return;
  }
  const diff = path.join(ctx.stepDir, 'diff');
  mkdirSync(diff);
  const view = await viewOf(ctx);
  const resolved = view.resolve(dir);
  if (!resolved.entry) materializeDir(view, diff, resolved.path, { uid: 0, gid: 0, mode: 0o755 });
  await commitLayerDir(ctx, diff, `WORKDIR ${dir}`);
}

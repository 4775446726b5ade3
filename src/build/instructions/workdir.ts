import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { WordInstruction } from '../../dockerfile/instructions.js';
import { expand } from '../expand.js';
import { materializeDir } from '../materialize-dir.js';
import { resolveUser } from '../../sandbox/user.js';
import { cachedStep, commitLayerDir, fail, viewOf, type StepContext } from '../step-context.js';

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
  await cachedStep(ctx, { keyword: 'WORKDIR', dir, user: ctx.state.config.config.User, createdBy: `WORKDIR ${dir}` }, async () => {
  const diff = path.join(ctx.stepDir, 'diff');
  mkdirSync(diff);
  const view = await viewOf(ctx);
  const resolved = view.resolve(dir);
  if (!resolved.entry) {
    // created as the current USER, as BuildKit does
    let owner = { uid: 0, gid: 0 };
    try {
      owner = resolveUser(ctx.state.config.config.User, (p) => view.readFile(p));
    } catch (err) {
      fail(ctx, (err as Error).message, err);
    }
    materializeDir(view, diff, resolved.path, { uid: owner.uid, gid: owner.gid, mode: 0o755 });
  }
  await commitLayerDir(ctx, diff, `WORKDIR ${dir}`);
  });
}

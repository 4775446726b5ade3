// WORKDIR: sets the working directory and makes it in a layer, as BuildKit does.
import path from 'node:path';
import type { WordInstruction } from '../../dockerfile/instructions.js';
import { resolveUser } from '../../sandbox/user.js';
import { LayerPlan } from '../copy-plan.js';
import { cachedStep, commitLayerTar, fail, viewOf, type StepContext } from '../step-context.js';

/**
 * WORKDIR sets the working directory and, as BuildKit does, creates it (as the current USER) in a
 * layer of its own: an empty layer when it already exists. `WORKDIR /` changes config only.
 */
export async function workdir(ctx: StepContext, ins: WordInstruction): Promise<void> {
  const dir = path.posix.resolve(ctx.state.config.config.WorkingDir || '/', ins.value);
  const user = ctx.state.config.config.User;
  ctx.state.setRuntime({ WorkingDir: dir });
  if (dir === '/') {
    ctx.state.addHistory(`WORKDIR ${dir}`);
    return;
  }
  await cachedStep(ctx, { keyword: 'WORKDIR', dir, user, createdBy: `WORKDIR ${dir}` }, async () => {
    const view = await viewOf(ctx);
    const plan = new LayerPlan(view, Math.floor(Date.now() / 1000), ctx.epochSeconds);
    const resolved = view.resolve(dir);
    if (!resolved.entry) {
      let owner;
      try {
        owner = resolveUser(user, (p) => view.readFile(p));
      } catch (err) {
        fail(ctx, (err as Error).message, err);
      }
      plan.dir(resolved.path, { uid: owner.uid, gid: owner.gid, mode: 0o755 });
    }
    await commitLayerTar(ctx, (sink) => plan.write(sink), `WORKDIR ${dir}`);
  });
}

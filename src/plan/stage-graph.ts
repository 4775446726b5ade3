// Which stages a target needs, and which each waits for.
import { DockerfileError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import type { Stage } from './stages.js';

/**
 * The stages a build needs, in Dockerfile order: the target (--target, else the last stage) and,
 * transitively, the stages it uses as a base (FROM <stage>), copies from (COPY --from) or mounts
 * (RUN --mount from=). Stages
 * nothing needs are not built, as in BuildKit.
 */
export function neededStages(
  stages: Stage[],
  bases: string[],
  target: string | undefined,
  expandFrom: (s: string) => string,
): { needed: Stage[]; dependencies: Map<number, number[]> } {
  const byName = new Map<string, Stage>();
  for (const s of stages) if (s.name) byName.set(s.name, s);
  let goal = stages.at(-1)!;
  if (target !== undefined) {
    const t = byName.get(target.toLowerCase());
    if (!t) throw new DockerfileError(didYouMean(`target stage "${target}" could not be found`, target, byName.keys()), { location: { file: stages[0]!.from.location.file, line: 1 } });
    goal = t;
  }
  const refersTo = (name: string, before: number): Stage | undefined => {
    const s = byName.get(name.toLowerCase()) ?? (/^\d+$/.test(name) ? stages[Number(name)] : undefined);
    return s && s.index < before ? s : undefined;
  };
  const needed = new Set<number>();
  const dependencies = new Map<number, number[]>();
  const visit = (s: Stage) => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    const deps: number[] = [];
    dependencies.set(s.index, deps);
    const base = byName.get(bases[s.index]!.toLowerCase());
    if (base && base.index < s.index) {
      deps.push(base.index);
      visit(base);
    }
    for (const ins of s.instructions) {
      const froms: string[] = [];
      if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && ins.from) froms.push(ins.from);
      if (ins.keyword === 'RUN') {
        for (const m of ins.mounts) if (m.from !== undefined) froms.push(m.from);
      }
      for (const from of froms) {
        const dep = refersTo(expandFrom(from), s.index);
        if (dep) {
          deps.push(dep.index);
          visit(dep);
        }
      }
    }
  };
  visit(goal);
  return { needed: stages.filter((s) => needed.has(s.index)), dependencies };
}

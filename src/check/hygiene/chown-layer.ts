// ChownInOwnLayer: a RUN that only changes owners or modes, recursively.
import type { CheckInput } from '../input.js';
import { RULES } from '../rules.js';
import { runText, simpleCommands } from './run-text.js';

const RECURSIVE = /^(chmod|chown|chgrp)\s+(?:\S+\s+)*?(?:-[a-zA-Z]*R[a-zA-Z]*|--recursive)(?:\s|$)/;

export function chownInOwnLayer(input: CheckInput): void {
  for (const stage of input.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'RUN') continue;
      const commands = simpleCommands(runText(ins));
      if (commands.length === 0) continue;
      const changes = commands.map((c) => RECURSIVE.exec(c)?.[1]);
      if (changes.some((c) => c === undefined)) continue;
      const named = [...new Set(changes)].map((c) => `${c} -R`).join(' and ');
      input.linter.warn(RULES.ChownInOwnLayer, `${named} in a RUN of its own copies every file it changes into a new layer`, ins.location);
    }
  }
}

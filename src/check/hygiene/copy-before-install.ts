// CopyAllBeforeInstall: the whole context copied before the RUN that installs dependencies.
import type { CopyInstruction } from '../../dockerfile/instructions.js';
import type { CheckInput } from '../input.js';
import { RULES } from '../rules.js';
import { runText, simpleCommands } from './run-text.js';

/** Install commands, and the manifests to copy before them. */
const INSTALLS: Array<[RegExp, string]> = [
  [/^npm\s+(?:ci|install|i)(?:\s|$)/, 'package.json and package-lock.json'],
  [/^yarn(?:\s+install)?(?:\s+--\S+)*$/, 'package.json and yarn.lock'],
  [/^pnpm\s+(?:install|i)(?:\s|$)/, 'package.json and pnpm-lock.yaml'],
  [/^pip3?\s+install\s.*(?:-r|--requirement)\s*\S+/, 'the requirements file'],
  [/^python3?\s+-m\s+pip\s+install\s.*(?:-r|--requirement)\s*\S+/, 'the requirements file'],
  [/^poetry\s+install(?:\s|$)/, 'pyproject.toml and poetry.lock'],
  [/^uv\s+sync(?:\s|$)/, 'pyproject.toml and uv.lock'],
  [/^pipenv\s+install(?:\s|$)/, 'Pipfile and Pipfile.lock'],
  [/^bundle\s+install(?:\s|$)/, 'Gemfile and Gemfile.lock'],
  [/^go\s+mod\s+download(?:\s|$)/, 'go.mod and go.sum'],
  [/^composer\s+install(?:\s|$)/, 'composer.json and composer.lock'],
];

/** COPY or ADD of the whole context: `.`, `./`, `*` or `./*` among its sources. */
function copiesAll(ins: CopyInstruction): boolean {
  return ins.from === undefined && ins.sources.some((s) => /^\.?\/?\*?$/.test(s) && s !== '');
}

export function copyAllBeforeInstall(input: CheckInput): void {
  for (const stage of input.stages) {
    let copied: CopyInstruction | undefined;
    stage: for (const ins of stage.instructions) {
      if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && !copied && copiesAll(ins)) copied = ins;
      if (ins.keyword !== 'RUN' || !copied) continue;
      for (const command of simpleCommands(runText(ins))) {
        const install = INSTALLS.find(([re]) => re.test(command));
        if (!install) continue;
        const what = command.split(/\s+/).slice(0, 3).join(' ');
        input.linter.warn(
          RULES.CopyAllBeforeInstall,
          `${copied.original.trim()} comes before the dependency install at line ${ins.location.line} (${what}): every source edit re-runs it; copy ${install[1]} first`,
          copied.location,
        );
        break stage; // one warning a stage
      }
    }
  }
}

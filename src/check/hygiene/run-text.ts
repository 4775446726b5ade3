// A RUN's command text, and its simple commands, for the rules that read what it runs.
import type { RunInstruction } from '../../dockerfile/instructions.js';

/** What the RUN runs: its command line (either form) and its heredocs' scripts. */
export function runText(ins: RunInstruction): string {
  return [ins.args.join(' '), ...ins.heredocs.map((h) => h.content)].join('\n');
}

/** The simple commands of a shell text, split at `&&`, `||`, `;`, `|` and new lines (quotes not parsed: good enough to name commands). */
export function simpleCommands(text: string): string[] {
  return text
    .replace(/\\\n/g, ' ')
    .split(/&&|\|\||;|\||\n/)
    .map((c) => c.trim())
    .filter((c) => c !== '' && c !== 'set -e' && c !== 'set -eux' && !c.startsWith('#'));
}

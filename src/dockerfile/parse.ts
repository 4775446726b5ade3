import { DockerfileParser } from 'dockerfile-ast';
import { DockerfileError } from '../errors.js';
import { parseJsonForm, type Instruction, type ParsedDockerfile } from './instruction.js';

interface FlagLike {
  getName(): string;
  getValue(): string | null;
}

function flagsOf(node: unknown): Array<{ name: string; value: string | undefined }> {
  const getFlags = (node as { getFlags?: () => FlagLike[] }).getFlags;
  if (typeof getFlags !== 'function') return [];
  return getFlags.call(node).map((f) => ({ name: f.getName(), value: f.getValue() ?? undefined }));
}

/**
 * Parses Dockerfile text into located instructions. dockerfile-ast finds the instructions, their
 * line ranges, flags, directives and continuations; the meaning of each is left to the build.
 */
export function parseDockerfile(text: string, file: string): ParsedDockerfile {
  const ast = DockerfileParser.parse(text);
  const lines = text.split(/\r?\n/);
  const instructions: Instruction[] = [];
  for (const node of ast.getInstructions()) {
    const range = node.getRange();
    const keyword = node.getKeyword().toUpperCase();
    const location = { file, line: range.start.line + 1, endLine: range.end.line + 1 };
    const args = node.getArgumentsContent() ?? '';
    if (!/^[A-Z]+$/.test(keyword)) {
      throw new DockerfileError(`unknown instruction: ${node.getInstruction()}`, { location });
    }
    instructions.push({
      keyword,
      flags: flagsOf(node),
      args,
      json: parseJsonForm(args),
      location,
      source: (lines[range.start.line] ?? '').trim(),
    });
  }
  if (instructions.length === 0) throw new DockerfileError('the Dockerfile has no instructions', { location: { file, line: 1 } });
  return { file, escape: ast.getEscapeCharacter(), instructions };
}

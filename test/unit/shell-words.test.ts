import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { envFromList, expandWord, expandWords } from '../../src/dockerfile/shell-words.js';

// BuildKit's shell-expansion tables (frontend/dockerfile/shell), copied into test/golden.
const golden = (name: string) => readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../golden', name), 'utf8');

describe('envVarTest: single-word expansion', () => {
  const env = envFromList(['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL=']);
  const rows = golden('envVarTest')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split('|'))
    .filter(([platform]) => platform !== 'W'); // Windows-only rows
  it.each(rows.map(([, input, expected]) => [input!.trim(), (expected ?? '').trim()]))('%s → %s', (input, expected) => {
    if (expected === 'error') expect(() => expandWord(input, env)).toThrow();
    else expect(expandWord(input, env)).toBe(expected);
  });
});

describe('wordsTest: expansion with word splitting', () => {
  const cases: Array<{ input: string; expected: string; env: string[] }> = [];
  const env: string[] = [];
  for (const line of golden('wordsTest').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (line.startsWith('ENV ')) {
      env.push(line.slice(4));
      continue;
    }
    const bar = line.lastIndexOf('|');
    // the table pads with spaces around '|'; expected values may end in meaningful spaces
    cases.push({ input: line.slice(0, bar).trim(), expected: line.slice(bar + 2), env: [...env] });
  }
  it.each(cases)('$input', ({ input, expected, env: vars }) => {
    if (expected === 'error') expect(() => expandWords(input, envFromList(vars))).toThrow();
    else expect(expandWords(input, envFromList(vars)).join(',')).toBe(expected);
  });
});

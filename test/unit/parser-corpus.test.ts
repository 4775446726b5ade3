import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dumpNode } from '../../src/dockerfile/node.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';

// BuildKit's parser corpus (frontend/dockerfile/parser/testfiles*), copied into test/golden/parser.
const corpus = path.join(path.dirname(fileURLToPath(import.meta.url)), '../golden/parser');
const dirs = (sub: string) => readdirSync(path.join(corpus, sub)).sort();

describe('BuildKit parser corpus: every positive case parses to its result file', () => {
  it.each(dirs('testfiles').filter((d) => existsSync(path.join(corpus, 'testfiles', d, 'result'))))('%s', (dir) => {
    const text = readFileSync(path.join(corpus, 'testfiles', dir, 'Dockerfile'), 'utf8');
    const expected = readFileSync(path.join(corpus, 'testfiles', dir, 'result'), 'utf8');
    const parsed = parseDockerfile(text, 'Dockerfile');
    expect(parsed.nodes.map((n) => `(${dumpNode(n)})\n`).join('')).toBe(expected);
  });
});

describe('BuildKit parser corpus: every negative case is an error', () => {
  it.each(dirs('testfiles-negative'))('%s', (dir) => {
    const text = readFileSync(path.join(corpus, 'testfiles-negative', dir, 'Dockerfile'), 'utf8');
    expect(() => parseDockerfile(text, 'Dockerfile')).toThrow();
  });
});

describe('the escape directive', () => {
  const cases: Array<[string, string, string]> = [
    ['plain', 'FROM x\n', '\\'],
    ['backtick', '# escape=`\nFROM x\n', '`'],
    ['with spaces', '  # escape = `  \nFROM x\n', '`'],
    ['after another directive', '# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n', '`'],
    ['CRLF', '# escape=`\r\nFROM x\r\n', '`'],
    ['after a BOM', '\uFEFF# escape=`\nFROM x\n', '`'],
    ['after a blank line: not a directive', '\n# escape=`\nFROM x\n', '\\'],
    ['after a comment: not a directive', '# hello\n# escape=`\nFROM x\n', '\\'],
    ['after FROM: a comment', 'FROM x\n# escape=`\n', '\\'],
  ];
  it.each(cases)('%s', (_, text, escape) => {
    expect(parseDockerfile(text, 'Dockerfile').escape).toBe(escape);
  });
});

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dumpNode } from '../../src/dockerfile/node.js';
import { toInstruction } from '../../src/dockerfile/instructions.js';
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

describe('BuildKit parser corpus: every negative case fails with the error its error file holds', () => {
  it.each(dirs('testfiles-negative'))('%s', (dir) => {
    const text = readFileSync(path.join(corpus, 'testfiles-negative', dir, 'Dockerfile'), 'utf8');
    const expected = readFileSync(path.join(corpus, 'testfiles-negative', dir, 'error'), 'utf8').trim();
    expect(() => parseDockerfile(text, 'Dockerfile')).toThrow(expect.objectContaining({ message: expected, location: expect.objectContaining({ file: 'Dockerfile' }) }));
  });
});

/** BuildKit's instruction parse errors (frontend/dockerfile/instructions/parse_test.go), with the same texts. */
const instructionErrors: Array<[string, string]> = [
  ...['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL'].map((c): [string, string] => [c, `${c} requires exactly one argument`]),
  ...['ENV', 'LABEL', 'ONBUILD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME'].map((c): [string, string] => [c, `${c} requires at least one argument`]),
  ...['ADD', 'COPY'].map((c): [string, string] => [`${c} arg1`, `${c} requires at least two arguments, but only one was provided. Destination could not be determined`]),
  ...['ENV', 'LABEL'].map((c): [string, string] => [`${c} =arg2`, `${c} names can not be blank`]),
  ['COPY\t\n\t\tquux \\\n      bar', 'COPY requires at least two arguments'],
  ['ONBUILD FROM scratch', "FROM isn't allowed as an ONBUILD trigger"],
  ['MAINTAINER --boo joe@example.com', 'unknown flag: --boo'],
  ['ONBUILD ONBUILD RUN touch foobar', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  ['FOO bar', 'unknown instruction: FOO'],
  ['foo bar', 'unknown instruction: foo'],
];

describe('instruction errors say what BuildKit says', () => {
  it.each(instructionErrors)('%j', (text, message) => {
    const parse = () => parseDockerfile(`FROM busybox\n${text}\n`, 'Dockerfile').nodes.slice(1).forEach((n) => toInstruction(n));
    expect(parse).toThrow(expect.objectContaining({ message: expect.stringContaining(message), location: expect.objectContaining({ line: 2 }) }));
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

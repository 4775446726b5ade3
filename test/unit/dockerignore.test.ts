import { describe, expect, it } from 'vitest';
import { IgnoreMatcher } from '../../src/dockerfile/dockerignore.js';

describe('.dockerignore matching', () => {
  const cases: Array<[string[], string, boolean]> = [
    [['*.log'], 'a.log', true],
    [['*.log'], 'dir/a.log', false],
    [['**/*.log'], 'dir/sub/a.log', true],
    [['node_modules'], 'node_modules/x/y.js', true],
    [['/build', './dist'], 'build/out', true],
    [['/build', './dist'], 'dist', true],
    [['docs', '!docs/keep.md'], 'docs/keep.md', false],
    [['docs', '!docs/keep.md'], 'docs/other.md', true],
    [['# comment', 'secret?.txt'], 'secret1.txt', true],
    [['[a-c].txt'], 'b.txt', true],
    [['[a-c].txt'], 'd.txt', false],
    [['*', '!Dockerfile'], 'Dockerfile', false],
  ];
  it.each(cases)('%j excludes %s: %s', (patterns, file, excluded) => {
    expect(new IgnoreMatcher(patterns).excludes(file)).toBe(excluded);
  });
});

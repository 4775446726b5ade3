import { describe, expect, it } from 'vitest';
import { didYouMean, levenshtein, nearest } from '../../src/util/suggest.js';

describe('did you mean', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['', 'abc', 3],
    ['build', 'biuld', 2],
    ['same', 'same', 0],
  ])('levenshtein(%s, %s) = %d', (a, b, d) => expect(levenshtein(a, b)).toBe(d));

  it('suggests only options at most 2 edits away, and nothing for an exact match', () => {
    expect(nearest('biuld', ['base', 'build', 'final'], true)).toBe('build');
    expect(nearest('bd', ['build'], true)).toBe(undefined); // 3 edits
    expect(nearest('build', ['build', 'buildx'], true)).toBe(undefined);
  });

  it('matches instructions in the case they were written', () => {
    expect(nearest('FOMR', ['from', 'run'], false)).toBe('FROM');
    expect(nearest('fomr', ['from', 'run'], false)).toBe('from');
  });

  it('appends BuildKit\'s hint', () => {
    expect(didYouMean('target stage "bulid" could not be found', 'bulid', ['build'])).toBe('target stage "bulid" could not be found (did you mean build?)');
    expect(didYouMean('unknown', 'zzzzzz', ['build'])).toBe('unknown');
  });
});

import { describe, expect, it } from 'vitest';
import { invokedCommand } from '../../src/cli/main.js';

describe('invokedCommand: the one command whose flags the CLI defines', () => {
  it.each([
    [['images'], 'images'],
    [['--root', '/s', 'images'], 'images'],
    [['--root=/s', 'prune', '-a'], 'prune'],
    [['system', 'df'], 'system'],
    // the default command's context or flags
    [['.'], 'build'],
    [['-t', 'x', '.'], 'build'],
    [['--root', '/s', '--no-cache', '.'], 'build'],
    [['imagse'], 'build'],
    // what needs every command: help, the version, nothing
    [[], undefined],
    [['--help'], undefined],
    [['-h'], undefined],
    [['help', 'images'], undefined],
    [['-v'], undefined],
    [['--root', '/s', '--version'], undefined],
    [['--root'], undefined],
  ] as Array<[string[], string | undefined]>)('%j → %s', (argv, want) => {
    expect(invokedCommand(argv)).toBe(want);
  });
});

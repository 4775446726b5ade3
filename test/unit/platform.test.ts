// Platforms parsed, normalised and matched as containerd does.
import { describe, expect, it } from 'vitest';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/image/platform.js';

describe('platforms', () => {
  const parsed: Array<[string, string]> = [
    ['linux/amd64', 'linux/amd64'],
    ['amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['LINUX/AMD64', 'linux/amd64'],
  ];
  it.each(parsed)('%s is %s', (text, shown) => {
    expect(formatPlatform(parsePlatform(text))).toBe(shown);
  });

  const bad: Array<[string, RegExp]> = [
    ['', /invalid platform "": expected os\/arch\[\/variant\]/],
    ['linux//amd64', /invalid platform/],
    ['a/b/c/d', /invalid platform/],
    ['windows/amd64', /platform "windows\/amd64" is not supported: tsbuild builds linux images/],
  ];
  it.each(bad)('%j is refused', (text, message) => {
    expect(() => parsePlatform(text)).toThrow(message);
  });

  const matches: Array<[string, { os: string; architecture: string; variant?: string }, boolean]> = [
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }, true],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm' }, true],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm' }, false],
    ['linux/amd64', { os: 'linux', architecture: 'arm64' }, false],
    ['linux/amd64', { os: 'unknown', architecture: 'unknown' }, false],
  ];
  it.each(matches)('%s against %j: %s', (wanted, candidate, expected) => {
    expect(platformMatches(candidate, parsePlatform(wanted))).toBe(expected);
  });
});

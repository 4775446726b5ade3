import { describe, expect, it } from 'vitest';
import { familiarName, normalizeName } from '../../src/image/reference.js';

describe('image names are normalised as Docker does', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['me/app:v1', 'docker.io/me/app:v1', 'me/app:v1'],
    ['localhost:5000/app', 'localhost:5000/app:latest', 'localhost:5000/app:latest'],
    ['registry.example.com/team/app:2', 'registry.example.com/team/app:2', 'registry.example.com/team/app:2'],
    ['changed-ubuntu', 'docker.io/library/changed-ubuntu:latest', 'changed-ubuntu:latest'],
  ])('%s → %s', (input, full, familiar) => {
    expect(normalizeName(input)).toBe(full);
    expect(familiarName({ ...splitFull(full) })).toBe(familiar);
  });

  it.each(['UPPER', 'a b', 'x:', 'x::y', '-lead', ''])('rejects %j', (bad) => {
    expect(() => normalizeName(bad)).toThrow(/invalid reference format/);
  });
});

function splitFull(full: string) {
  const slash = full.indexOf('/');
  const rest = full.slice(slash + 1);
  const colon = rest.lastIndexOf(':');
  return { domain: full.slice(0, slash), path: rest.slice(0, colon), tag: rest.slice(colon + 1) };
}

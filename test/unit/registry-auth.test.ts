// WWW-Authenticate challenges as registries send them.
import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/registry/auth.js';

describe('WWW-Authenticate', () => {
  const cases: Array<[string, Array<{ scheme: string; params: Record<string, string> }>]> = [
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    ['basic realm=plain', [{ scheme: 'basic', params: { realm: 'plain' } }]],
    [
      'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:o/r:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:o/r:pull,push' } }],
    ],
    ['Bearer realm="a \\"quoted\\" realm"', [{ scheme: 'bearer', params: { realm: 'a "quoted" realm' } }]],
    [
      'Basic realm="x", Bearer realm="https://t/token",service="s"',
      [
        { scheme: 'basic', params: { realm: 'x' } },
        { scheme: 'bearer', params: { realm: 'https://t/token', service: 's' } },
      ],
    ],
    ['', []],
  ];
  it.each(cases)('%s', (header, expected) => {
    expect(parseChallenges(header)).toEqual(expected);
  });
});

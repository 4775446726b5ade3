import { describe, expect, it } from 'vitest';
import { stepKey } from '../../src/builder/cache-key.js';

const parent = `sha256:${'a'.repeat(64)}` as const;

describe('a step\'s cache key', () => {
  it('is the same for the same parent and material, and a hex digest', () => {
    expect(stepKey(parent, { argv: ['echo'] })).toBe(stepKey(parent, { argv: ['echo'] }));
    expect(stepKey(parent, { argv: ['echo'] })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with the layers below and with anything the step depends on', () => {
    const base = stepKey(parent, { argv: ['echo'], env: ['A=1'] });
    expect(stepKey(`sha256:${'b'.repeat(64)}`, { argv: ['echo'], env: ['A=1'] })).not.toBe(base);
    expect(stepKey(parent, { argv: ['echo'], env: ['A=2'] })).not.toBe(base);
    expect(stepKey(parent, { argv: ['echo', ''], env: ['A=1'] })).not.toBe(base);
  });

  it('FROM scratch is a parent of its own', () => {
    expect(stepKey(undefined, {})).toBe(stepKey(undefined, {}));
    expect(stepKey(undefined, {})).not.toBe(stepKey(parent, {}));
  });
});

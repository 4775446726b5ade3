import { describe, expect, it } from 'vitest';
import { located } from '../../src/builder/step-error.js';
import { BuildStepError, IntegrityError, InterruptedError, TsbuildError } from '../../src/errors.js';
import type { Instruction } from '../../src/dockerfile/instructions.js';

const ins = { keyword: 'RUN', location: { file: 'Dockerfile', line: 3 } } as Instruction;
const root = '/var/lib/tsbuild';

describe('a failing step is one located line', () => {
  it('a system error says internal error, without the store\'s paths', () => {
    const err = Object.assign(new Error(`EEXIST: file already exists, mkdir '${root}/tmp/build-42-0a1b2c3d/step-1/init/etc'`), { code: 'EEXIST' });
    const out = located(err, ins, root) as TsbuildError;
    expect(out).toBeInstanceOf(BuildStepError);
    expect(out.format()).toBe("Dockerfile:3: RUN: internal error: EEXIST: file already exists, mkdir 'step-1/init/etc'");
    expect(out.cause).toBe(err);
  });

  it('a tsbuild error without a line gets the step\'s, and keeps its text and exit code', () => {
    const out = located(new IntegrityError(`blob sha256:ab is corrupt`), ins, root) as TsbuildError;
    expect(out.format()).toBe('Dockerfile:3: blob sha256:ab is corrupt');
  });

  it('errors that are located already, and interruptions, pass through', () => {
    const own = new BuildStepError('RUN failed', { location: { file: 'Dockerfile', line: 9 } });
    expect(located(own, ins, root)).toBe(own);
    const stop = new InterruptedError('SIGINT');
    expect(located(stop, ins, root)).toBe(stop);
  });
});

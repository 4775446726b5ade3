import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { platformArgs, resolveGlobalArgs } from '../../src/plan/args.js';
import { planBuild } from '../../src/plan/build-plan.js';
import { planStages } from '../../src/plan/stages.js';

const plan = (text: string, target?: string, buildArgs?: Record<string, string | undefined>) => planBuild(parseDockerfile(text, 'Dockerfile'), buildArgs, target);
const needed = (text: string, target?: string) => plan(text, target).needed.map((s) => s.name ?? String(s.index));

describe('the stage graph: which stages a target needs, and what each waits for', () => {
  const df = [
    'FROM busybox AS base',
    'FROM base AS build', // FROM a stage
    'RUN echo',
    'FROM busybox AS tools',
    'FROM busybox AS unused',
    'RUN exit 1',
    'FROM busybox AS assets',
    'FROM busybox AS final',
    'COPY --from=build /a /a', // COPY --from a name
    'COPY --from=2 /t /t', // COPY --from an index (tools)
    'RUN --mount=type=bind,from=assets,target=/x true', // a mount from a stage
    'COPY --from=nginx /etc /etc', // an image: no stage
  ].join('\n');

  it('follows FROM, COPY --from (name or index) and RUN --mount from=; skips what nothing needs', () => {
    expect(needed(df)).toEqual(['base', 'build', 'tools', 'assets', 'final']);
    const p = plan(df);
    expect(p.dependencies.get(5)).toEqual([1, 2, 4]); // final: build, tools, assets
    expect(p.dependencies.get(1)).toEqual([0]); // build waits for base
  });

  it('--target builds that stage and what it needs, matched without case', () => {
    expect(needed(df, 'BUILD')).toEqual(['base', 'build']);
    expect(() => plan(df, 'bulid')).toThrow('target stage "bulid" could not be found (did you mean build?)');
  });

  it('a stage may only use stages before it', () => {
    expect(needed('FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n', 'a')).toEqual(['a']);
  });

  it('FROM and --from see global ARGs', () => {
    const p = plan('ARG BASE=busybox\nARG SRC=tools\nFROM $BASE AS tools\nFROM ${BASE}:1\nCOPY --from=$SRC /x /x\n');
    expect(p.bases).toEqual(['busybox', 'busybox:1']);
    expect(p.dependencies.get(1)).toEqual([0]);
  });

  it('refuses two stages of one name, and instructions before any FROM but ARG', () => {
    expect(() => planStages(parseDockerfile('FROM a AS x\nFROM b AS x\n', 'Dockerfile'))).toThrow('duplicate name x');
    expect(() => planStages(parseDockerfile('RUN true\nFROM a\n', 'Dockerfile'))).toThrow('no build stage in current context');
  });
});

describe('global ARGs', () => {
  const args = (text: string, buildArgs?: Record<string, string | undefined>) => {
    const parsed = parseDockerfile(`${text}\nFROM scratch\n`, 'Dockerfile');
    return Object.fromEntries(resolveGlobalArgs(planStages(parsed).globalArgs, buildArgs, parsed.escape).map((a) => [a.key, a.value]));
  };

  it('start with the platform ARGs', () => {
    expect(Object.keys(args(''))).toEqual(platformArgs().map((a) => a.key));
    expect(args('').TARGETPLATFORM).toMatch(/^linux\//);
  });

  it('expand with the ARGs before them; --build-arg wins; a bare --build-arg takes the environment', () => {
    process.env.TSBUILD_TEST_FROM_ENV = 'from-env';
    try {
      expect(args('ARG A=1\nARG B=${A}-b\nARG C=c\nARG TSBUILD_TEST_FROM_ENV=default', { C: 'cli', TSBUILD_TEST_FROM_ENV: undefined })).toMatchObject({ A: '1', B: '1-b', C: 'cli', TSBUILD_TEST_FROM_ENV: 'from-env' });
    } finally {
      delete process.env.TSBUILD_TEST_FROM_ENV;
    }
  });

  it('declared without a value has none, even a platform ARG', () => {
    expect(args('ARG TARGETARCH\nARG X')).toMatchObject({ TARGETARCH: undefined, X: undefined });
  });

  it('a bad expansion names its line', () => {
    expect(() => args('ARG A=${B:?unset}')).toThrow(expect.objectContaining({ message: 'ARG: B: unset', location: expect.objectContaining({ line: 1 }) }));
  });
});

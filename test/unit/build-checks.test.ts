import { describe, expect, it } from 'vitest';
import { DockerfileLint } from '../../src/check/dockerfile-lint.js';
import { byLine, checkJson, checkText, sourceSnippet } from '../../src/check/report.js';
import { IgnoreMatcher } from '../../src/dockerfile/dockerignore.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { planBuild } from '../../src/plan/build-plan.js';

/** Runs every check over a Dockerfile as --check does, each stage on scratch (or the stage it is built on). */
function check(text: string, opts: { buildArgs?: Record<string, string>; ignore?: string[]; image?: { Env?: string[]; Shell?: string[] } } = {}) {
  const parsed = parseDockerfile(text, 'Dockerfile');
  const ignore = new IgnoreMatcher(opts.ignore ?? []);
  const lint = new DockerfileLint(parsed, { buildArgs: opts.buildArgs, ignoresSource: (src) => ignore.ignoresSource(src) });
  let error: string | undefined;
  try {
    lint.fileChecks();
    const plan = planBuild(parsed, opts.buildArgs, undefined);
    for (const stage of plan.stages) {
      const base = plan.bases[stage.index]!;
      const parent = plan.stages.find((s) => s.index < stage.index && s.name === base.toLowerCase());
      lint.stageChecks(stage.index, parent ? { parent: parent.index } : { image: base === 'scratch' ? undefined : opts.image });
    }
    lint.hygieneChecks(plan.stages, plan.bases);
    error = lint.linter.failure()?.message;
  } catch (err) {
    error = (err as Error).message;
  }
  return { warnings: byLine(lint.linter.warnings).map((w) => [w.location?.line, w.rule.name, w.message]), error, lint };
}
const rules = (text: string, opts?: Parameters<typeof check>[1]) => check(text, opts).warnings;

describe("BuildKit's build checks", () => {
  // [name, Dockerfile, expected [line, rule, message] in --check's order]
  const cases: Array<[string, string, Array<[number, string, string]>]> = [
    [
      'StageNameCasing and FromAsCasing',
      '\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n',
      [
        [4, 'StageNameCasing', "Stage name 'BadStageName' should be lowercase"],
        [8, 'FromAsCasing', "'as' and 'FROM' keywords' casing do not match"],
      ],
    ],
    ['FromAsCasing, lower-case from', '\nfrom scratch AS base\n\nfrom scratch as base2\n', [[2, 'FromAsCasing', "'AS' and 'from' keywords' casing do not match"]]],
    ['NoEmptyContinuation, at the line the instruction ends on', '\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n', [[6, 'NoEmptyContinuation', 'Empty continuation line']]],
    ['ConsistentInstructionCasing, a mixed keyword', '\n#\nFrom scratch as base\nFROM scratch AS base2\n', [[3, 'ConsistentInstructionCasing', "Command 'From' should match the case of the command majority (uppercase)"]]],
    ['ConsistentInstructionCasing, the lower-case majority', '\nfrom scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n', [[3, 'ConsistentInstructionCasing', "Command 'COPY' should match the case of the command majority (lowercase)"]]],
    ['ConsistentInstructionCasing, a tie is upper case', '\nFROM scratch\ncopy Dockerfile /foo\n', [[3, 'ConsistentInstructionCasing', "Command 'copy' should match the case of the command majority (uppercase)"]]],
    ['ConsistentInstructionCasing: a heredoc body is no instruction', '\nFROM scratch\nRUN <<EOT\nenv\nEOT\n', []],
    [
      'ReservedStageName',
      '\nFROM scratch AS scratch\nFROM scratch AS context\n',
      [
        [2, 'ReservedStageName', 'Stage name should not use the same name as reserved stage "scratch"'],
        [3, 'ReservedStageName', 'Stage name should not use the same name as reserved stage "context"'],
      ],
    ],
    ['JSONArgsRecommended', '\nFROM scratch\nCMD mycommand\n', [[3, 'JSONArgsRecommended', 'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals']]],
    ['JSONArgsRecommended: not after SHELL', '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nENTRYPOINT mycommand\n', []],
    ['JSONArgsRecommended: SHELL of the stage built on', '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nCMD mycommand\n', []],
    ['JSONArgsRecommended: skipped by the comment above', '\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n', []],
    ['MaintainerDeprecated', '\nFROM scratch\nMAINTAINER me@example.org\n', [[3, 'MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label']]],
    [
      'UndefinedArgInFrom, with a suggestion (and the name it makes is none)',
      '\nARG MY_ARCH=amd64\nFROM busybox:${MYARCH}\n',
      [
        [3, 'InvalidDefaultArgInFrom', 'Default value for ARG busybox:${MYARCH} results in empty or invalid base image name'],
        [3, 'UndefinedArgInFrom', "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)"],
      ],
    ],
    ['UndefinedArgInFrom: ${X:-default} is no exemption', '\nFROM alpine:${TAG:-3}\n', [[2, 'UndefinedArgInFrom', "FROM argument 'TAG' is not declared"]]],
    ['UndefinedArgInFrom: declared and automatic ARGs', '\nARG DEBUG\nFROM --platform=$BUILDPLATFORM scra${DEBUG:-tch}\n', []],
    ['WorkdirRelativePath', '\nFROM scratch\nWORKDIR app/\nWORKDIR sub\n', [[3, 'WorkdirRelativePath', 'Relative workdir "app/" can have unexpected results if the base image changes']]],
    ['WorkdirRelativePath: an absolute one first', '\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n', []],
    ['UndefinedVar', '\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n', [[3, 'UndefinedVar', "Usage of undefined variable '$foo'"]]],
    ['UndefinedVar: an ARG without a value is defined', '\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n', []],
    ['UndefinedVar, with a suggestion', '\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n', [[3, 'UndefinedVar', "Usage of undefined variable '$PAHT' (did you mean $PATH?)"]]],
    ['UndefinedVar: an ENV\'s own pairs are set after all are expanded', '\nFROM scratch\nENV A=1 B=$A\n', [[3, 'UndefinedVar', "Usage of undefined variable '$A'"]]],
    ['UndefinedVar: the base image\'s ENV is defined', '\nFROM python\nCOPY app-$PYTHON_VERSION.txt /\n', []],
    [
      'MultipleInstructionsDisallowed, at the earlier one',
      '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
      [
        [3, 'MultipleInstructionsDisallowed', 'Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used'],
        [5, 'MultipleInstructionsDisallowed', 'Multiple CMD instructions should not be used in the same stage because only the last one will be used'],
        [7, 'MultipleInstructionsDisallowed', 'Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used'],
      ],
    ],
    [
      'LegacyKeyValueFormat',
      '\nFROM scratch\nENV testkey value\nLABEL key value\n',
      [
        [3, 'LegacyKeyValueFormat', '"ENV key=value" should be used instead of legacy "ENV key value" format'],
        [4, 'LegacyKeyValueFormat', '"LABEL key=value" should be used instead of legacy "LABEL key value" format'],
      ],
    ],
    ['RedundantTargetPlatform', '\nFROM --platform=${TARGETPLATFORM} scratch\n', [[2, 'RedundantTargetPlatform', 'Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior']]],
    [
      'SecretsUsedInArgOrEnv, in the order given',
      '\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nENV PUBLIC_KEY= sunflower=foo\nARG SECRET_PASSPHRASE_FILE\n# check=skip=SecretsUsedInArgOrEnv // allowed here\nENV password=bar\n',
      [
        [3, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ARG "SECRET_PASSPHRASE")'],
        [4, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "SUPER_Secret")'],
        [5, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "password")'],
        [5, 'SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "secret")'],
      ],
    ],
    ['InvalidDefaultArgInFrom', '\nARG VERSION\nFROM busybox:$VERSION\n', [[3, 'InvalidDefaultArgInFrom', 'Default value for ARG busybox:$VERSION results in empty or invalid base image name']]],
    ['InvalidDefaultArgInFrom: a default that makes a name', '\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', []],
    ['FromPlatformFlagConstDisallowed', '\nFROM --platform=linux/amd64 scratch\n', [[2, 'FromPlatformFlagConstDisallowed', 'FROM --platform flag should not use constant value "linux/amd64"']]],
    ['FromPlatformFlagConstDisallowed: a stage named for its platform', '\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n', []],
    [
      'ExposeProtoCasing and ExposeInvalidFormat, ports in sorted order',
      '\nFROM scratch\nEXPOSE 80/TcP 8080/udp 127.0.0.1:80:80 5000:5000\n',
      [
        [3, 'ExposeInvalidFormat', "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'"],
        [3, 'ExposeInvalidFormat', "EXPOSE instruction should not define an IP address or host-port mapping, found '5000:5000'"],
        [3, 'ExposeProtoCasing', "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase"],
      ],
    ],
  ];
  it.each(cases)('%s', (_name, dockerfile, expected) => {
    expect(rules(dockerfile, { image: { Env: ['PATH=/usr/bin', 'PYTHON_VERSION=3.12'] } }).filter(([, r]) => r !== 'FromUnpinned')).toEqual(expected);
  });

  it('DuplicateStageName warns, as the build then refuses', () => {
    const r = check('\nFROM scratch AS b\nFROM scratch AS B\n');
    expect(r.warnings).toEqual([
      [3, 'StageNameCasing', "Stage name 'B' should be lowercase"],
      [3, 'DuplicateStageName', 'Duplicate stage name "b", stage names should be unique'],
    ]);
    expect(r.error).toBe('duplicate name b');
  });

  it('InvalidBaseImagePlatform: a base of another platform than the build is for (no documentation link)', () => {
    const parsed = parseDockerfile('FROM alpine\nRUN true\n', 'Dockerfile');
    const lint = new DockerfileLint(parsed);
    lint.fileChecks();
    const amd64 = { os: 'linux', architecture: 'amd64' };
    lint.stageChecks(0, { image: {}, name: 'alpine', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, expected: amd64 });
    expect(lint.linter.warnings.map((w) => [w.location?.line, w.rule.name, w.rule.url, w.message])).toContainEqual([
      1,
      'InvalidBaseImagePlatform',
      undefined,
      'Base image alpine was pulled with platform "linux/arm64/v8", expected "linux/amd64" for current build',
    ]);
    const same = new DockerfileLint(parsed);
    same.fileChecks();
    same.stageChecks(0, { image: {}, name: 'alpine', platform: { ...amd64, variant: 'v2' }, expected: amd64 });
    expect(same.linter.warnings.map((w) => w.rule.name)).not.toContain('InvalidBaseImagePlatform');
  });

  it('CopyIgnoredFile, only with .dockerignore patterns and none of them an exception', () => {
    const df = '\nFROM scratch\nCOPY Dockerfile .\nADD ./Dockerfile /windy\nCOPY . .\n';
    expect(rules(df, { ignore: ['Dockerfile'] })).toEqual([
      [3, 'CopyIgnoredFile', 'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore'],
      [4, 'CopyIgnoredFile', 'Attempting to Add file "Dockerfile" that is excluded by .dockerignore'],
    ]);
    expect(rules(df, { ignore: ['**', '!Dockerfile'] })).toEqual([]);
    expect(rules('\nFROM scratch\nCOPY . .\n', { ignore: ['*'] })).toEqual([[3, 'CopyIgnoredFile', 'Attempting to Copy file "." that is excluded by .dockerignore']]);
    expect(rules('\nFROM scratch\nCOPY . .\n', { ignore: ['.*'] })).toEqual([]);
  });

  it('InvalidDefinitionDescription runs only when asked for', () => {
    const df = '# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# version the version\nARG version=latest\n# bad comment\nARG foo=baz bar=qux\n';
    expect(rules(df)).toEqual([
      [3, 'InvalidDefinitionDescription', 'Comment for ARG should follow the format: `# foo <description>`'],
      [5, 'InvalidDefinitionDescription', 'Comment for FROM should follow the format: `# base <description>`'],
      [9, 'InvalidDefinitionDescription', 'Comment for ARG should follow the format: `# <arg_key> <description>`'],
    ]);
    expect(rules(df.replace('# check=experimental=InvalidDefinitionDescription', '# nothing'))).toEqual([]);
  });

  it('# check= skips, and error=true fails; the build arg replaces the directive', () => {
    const body = '\nFROM scratch as base\ncopy Dockerfile .\n';
    const both = [
      [2, 'FromAsCasing', "'as' and 'FROM' keywords' casing do not match"],
      [3, 'ConsistentInstructionCasing', "Command 'copy' should match the case of the command majority (uppercase)"],
    ];
    expect(check(`#check=skip=all${body}`)).toMatchObject({ warnings: [], error: undefined });
    expect(check(`#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true${body}`)).toMatchObject({ warnings: [], error: undefined });
    expect(check(`#check=skip=ConsistentInstructionCasing${body}`)).toMatchObject({ warnings: [both[0]], error: undefined });
    expect(check(`#check=skip=ConsistentInstructionCasing;error=true${body}`)).toMatchObject({ warnings: [both[0]], error: 'lint violation found for rules: FromAsCasing' });
    expect(check(`#check=skip=all${body}`, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=ConsistentInstructionCasing;error=true' } })).toMatchObject({
      warnings: [both[0]],
      error: 'lint violation found for rules: FromAsCasing',
    });
    expect(check(`#check=error=true${body}`, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' } })).toMatchObject({ warnings: [], error: undefined });
    expect(check(`${body}`).warnings).toEqual(both);
  });

  it('refuses a check directive it cannot read', () => {
    expect(() => check('# check=skip\nFROM scratch\n').lint).toThrow('failed to parse check options: invalid check option "skip"');
    expect(() => check('# check=error=maybe\nFROM scratch\n').lint).toThrow('failed to parse check options: failed to parse check option "error=maybe": invalid syntax');
    expect(() => parseDockerfile('# check=skip=all\n# check=error=true\nFROM scratch\n', 'Dockerfile')).toThrow('only one check parser directive can be used');
  });
});

describe("tsbuild's hygiene rules", () => {
  const cases: Array<[string, string, Array<[number, string, string]>]> = [
    ['AptListsKept', 'FROM debian:12\nRUN apt-get update && apt-get install -y curl\n', [[2, 'AptListsKept', 'apt-get install without removing /var/lib/apt/lists in the same RUN: the package lists stay in the layer']]],
    ['AptListsKept: removed in the same RUN', 'FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n', []],
    ['AptListsKept: the lists on a cache mount', 'FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y curl\n', []],
    ['ChownInOwnLayer', 'FROM debian:12\nCOPY . /app\nRUN chown -R app:app /app && chmod -R g+w /app\n', [[3, 'ChownInOwnLayer', 'chown -R and chmod -R in a RUN of its own copies every file it changes into a new layer']]],
    ['ChownInOwnLayer: alongside the work that makes the files', 'FROM debian:12\nRUN make && chown -R app /out\n', []],
    [
      'CopyAllBeforeInstall',
      'FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n',
      [[3, 'CopyAllBeforeInstall', 'COPY . . comes before the dependency install at line 4 (npm ci): every source edit re-runs it; copy package.json and package-lock.json first']],
    ],
    ['CopyAllBeforeInstall: manifests first', 'FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n', []],
    [
      'CopyAllBeforeInstall: pip',
      'FROM python:3.12\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n',
      [[2, 'CopyAllBeforeInstall', 'COPY . /app comes before the dependency install at line 3 (pip install -r): every source edit re-runs it; copy the requirements file first']],
    ],
    ['FromUnpinned: no tag', 'FROM debian\n', [[1, 'FromUnpinned', 'FROM debian has no tag: the build gets whatever "latest" is when the image is pulled']]],
    ['FromUnpinned: latest', 'FROM debian:latest AS b\nFROM b\n', [[1, 'FromUnpinned', 'FROM debian:latest: "latest" is whatever it is when the image is pulled']]],
    ['FromUnpinned: a digest, scratch, a stage', 'FROM debian@sha256:0123456789012345678901234567890123456789012345678901234567890123 AS b\nFROM scratch\nFROM b\n', []],
  ];
  it.each(cases)('%s', (_name, dockerfile, expected) => {
    expect(rules(dockerfile)).toEqual(expected);
  });
});

describe('--check output', () => {
  it('quotes the lines as BuildKit does', () => {
    expect(sourceSnippet('Dockerfile', 'FROM alpine as base\nCOPY Dockerfile .\n', 1, 1)).toBe(
      'Dockerfile:1\n--------------------\n   1 | >>> FROM alpine as base\n   2 |     COPY Dockerfile .\n   3 |     \n--------------------\n',
    );
    expect(sourceSnippet('Dockerfile', 'a\nb\nc\nd\ne\nf\ng\n', 3, 4)).toBe('Dockerfile:3\n--------------------\n   2 |     b\n   3 | >>> c\n   4 | >>> d\n   5 |     e\n--------------------\n');
  });

  it('prints the count, each warning, and the fix of a hygiene rule; JSON as BuildKit\'s lint result', () => {
    const text = 'FROM debian\nCMD echo hi\n';
    const { lint } = check(text);
    const warnings = lint.linter.warnings;
    const out = checkText('Dockerfile', text, warnings, false);
    expect(out.split('\n')[0]).toBe('Check complete, 2 warnings have been found!');
    expect(out).toContain('\nWARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\nJSON arguments recommended for CMD');
    expect(out).toContain('\nWARNING: FromUnpinned\nFROM debian has no tag: the build gets whatever "latest" is when the image is pulled\nFix: pin a version tag');
    expect(checkText('Dockerfile', 'FROM scratch\n', [], false)).toBe('Check complete, no warnings found.\n');
    const json = JSON.parse(checkJson('Dockerfile', text, warnings));
    expect(json.warnings.find((w: { ruleName: string }) => w.ruleName === 'JSONArgsRecommended')).toEqual({
      ruleName: 'JSONArgsRecommended',
      description: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
      url: 'https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
      detail: 'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
      location: { ranges: [{ start: { line: 2 }, end: { line: 2 } }] },
    });
    expect(Buffer.from(json.sources[0].data, 'base64').toString()).toBe(text);
  });
});

import { readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok, storeLeftovers, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

interface BadCase {
  name: string;
  files: Record<string, string>;
  /** Extra setup of the context directory. */
  prepare?: (dir: string) => void;
  args?: (dir: string) => string[];
  stderr: RegExp;
}

const cases: BadCase[] = [
  {
    name: 'missing Dockerfile',
    files: { 'README': 'no Dockerfile here' },
    stderr: /^tsbuild: failed to read Dockerfile .*Dockerfile: no such file$/,
  },
  {
    name: 'missing -f Dockerfile',
    files: { Dockerfile: 'FROM busybox\n' },
    args: (dir) => ['-f', path.join(dir, 'Nope.Dockerfile'), dir],
    stderr: /^tsbuild: failed to read Dockerfile .*Nope\.Dockerfile: no such file$/,
  },
  {
    name: 'unknown instruction',
    files: { Dockerfile: 'FROM busybox\nRUN true\nFOOBAR something\n' },
    stderr: /^tsbuild: .*Dockerfile:3: unknown instruction: FOOBAR$/,
  },
  {
    name: 'unknown flag',
    files: { Dockerfile: 'FROM busybox\nCOPY --nope=1 a /b\n' },
    stderr: /^tsbuild: .*Dockerfile:2: unknown flag: --nope \(COPY accepts --chown, --chmod, --from, --link, --exclude, --parents\)$/,
  },
  {
    name: 'RUN exiting non-zero',
    files: { Dockerfile: 'FROM busybox\nRUN echo first > /f\nRUN echo oops && exit 7\n' },
    stderr: /^tsbuild: .*Dockerfile:3: RUN failed: process "\/bin\/sh -c echo oops && exit 7" did not complete successfully: exit code: 7$/,
  },
  {
    name: 'RUN of a missing program',
    files: { Dockerfile: 'FROM busybox\nRUN ["/no/such/program"]\n' },
    stderr: /^tsbuild: .*Dockerfile:2: RUN failed: .*exit code: 127$/,
  },
  {
    name: 'missing COPY source',
    files: { Dockerfile: 'FROM busybox\nCOPY missing.txt /x\n' },
    stderr: /^tsbuild: .*Dockerfile:2: COPY failed: "missing.txt" not found in the build context/,
  },
  {
    name: 'COPY source excluded by .dockerignore',
    files: { Dockerfile: 'FROM busybox\nCOPY secret.txt /x\n', 'secret.txt': 's', '.dockerignore': 'secret.txt\n' },
    stderr: /^tsbuild: .*Dockerfile:2: COPY failed: "secret.txt" not found: excluded by .dockerignore$/,
  },
  {
    name: 'COPY ../ outside the context',
    files: { Dockerfile: 'FROM busybox\nCOPY ../outside /x\n' },
    stderr: /^tsbuild: .*Dockerfile:2: COPY failed: forbidden path outside the build context: \.\.\/outside$/,
  },
  {
    name: 'COPY of an absolute symlink leaving the context',
    files: { Dockerfile: 'FROM busybox\nCOPY passwd /x\n' },
    prepare: (dir) => symlinkSync('/etc/passwd', path.join(dir, 'passwd')),
    stderr: /^tsbuild: .*Dockerfile:2: COPY failed: forbidden path outside the build context: passwd is a symlink to \/etc\/passwd$/,
  },
  {
    name: 'COPY of a relative symlink climbing out of the context',
    files: { Dockerfile: 'FROM busybox\nCOPY up /x\n' },
    prepare: (dir) => symlinkSync('../../../../etc/passwd', path.join(dir, 'up')),
    stderr: /^tsbuild: .*Dockerfile:2: COPY failed: forbidden path outside the build context: up$/,
  },
  {
    name: 'a base image whose registry cannot be reached',
    files: { Dockerfile: 'FROM 127.0.0.1:9/nosuchimage:1\n' },
    stderr: /^tsbuild: .*Dockerfile:1: cannot reach 127\.0\.0\.1:9: connect ECONNREFUSED 127\.0\.0\.1:9$/,
  },
  {
    name: 'FROM a name that is no image reference',
    files: { Dockerfile: 'FROM Busybox\n' },
    stderr: /^tsbuild: .*Dockerfile:1: invalid reference format: "Busybox": repository name must be lowercase$/,
  },
  {
    name: 'USER that the image does not have',
    files: { Dockerfile: 'FROM busybox\nUSER ghost\nRUN true\n' },
    stderr: /^tsbuild: .*Dockerfile:3: unable to find user ghost: no matching entries in passwd file$/,
  },
  {
    name: 'COPY --from a mistyped stage name',
    files: { Dockerfile: 'FROM busybox AS build\nRUN echo x > /x\nFROM busybox\nCOPY --from=biuld /x /x\n' },
    stderr: /^tsbuild: .*Dockerfile:4: COPY --from=biuld: no stage or image is named biuld \(did you mean build\?\)$/,
  },
  {
    name: 'RUN --mount from= a mistyped stage name',
    files: { Dockerfile: 'FROM busybox AS tools\nFROM busybox\nRUN --mount=from=tool,target=/t true\n' },
    stderr: /^tsbuild: .*Dockerfile:3: RUN --mount from=tool: no stage or image is named tool \(did you mean tools\?\)$/,
  },
  {
    name: 'FROM a mistyped stage name',
    files: { Dockerfile: 'FROM busybox AS builder\nFROM buidler\n' },
    stderr: /^tsbuild: .*Dockerfile:2: FROM buidler: no stage or image is named buidler \(did you mean builder\?\)$/,
  },
  {
    name: 'COPY --from an image whose registry cannot be reached',
    files: { Dockerfile: 'FROM busybox\nCOPY --from=127.0.0.1:9/nginx:1 /x /x\n' },
    stderr: /^tsbuild: .*Dockerfile:2: COPY --from=127\.0\.0\.1:9\/nginx:1: cannot reach 127\.0\.0\.1:9: connect ECONNREFUSED 127\.0\.0\.1:9$/,
  },
  {
    name: '--target a mistyped stage name',
    files: { Dockerfile: 'FROM busybox AS build\nFROM busybox\n' },
    args: (dir) => ['--target', 'bulid', dir],
    stderr: /^tsbuild: .*Dockerfile:1: target stage "bulid" could not be found \(did you mean build\?\)$/,
  },
  {
    name: 'a mistyped instruction',
    files: { Dockerfile: 'FROM busybox\nCOPPY a /b\n' },
    stderr: /^tsbuild: .*Dockerfile:2: unknown instruction: COPPY \(did you mean COPY\?\)$/,
  },
  {
    name: 'a mistyped flag',
    files: { Dockerfile: 'FROM busybox\nCOPY --chwon=1 a /b\n' },
    stderr: /^tsbuild: .*Dockerfile:2: unknown flag: --chwon \(did you mean chown\?\)$/,
  },
  {
    name: 'bad flag',
    files: { Dockerfile: 'FROM busybox\n' },
    args: (dir) => ['--no-such-flag', dir],
    stderr: /^error: unknown option '--no-such-flag'$/,
  },
  {
    name: 'bad tag',
    files: { Dockerfile: 'FROM busybox\n' },
    args: (dir) => ['-t', 'Bad:Name:x', dir],
    stderr: /^tsbuild: invalid reference format/,
  },
];

describe.skipIf(lacks('root'))('bad input: one clear line, a non-zero exit, and a clean store', () => {
  const root = tempDir('store-');
  let imagesBefore: string;

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    imagesBefore = readFileSync(path.join(root, 'images.json'), 'utf8');
  });

  it.each(cases)('$name', async ({ files, prepare, args, stderr }) => {
    const dir = context(files);
    prepare?.(dir);
    const r = await tsbuild(root, args ? args(dir) : ['-t', 'broken', dir]);
    expect(r.code).not.toBe(0);
    const lastLine = r.stderr.trimEnd().split('\n').at(-1)!;
    expect(lastLine).toMatch(stderr);
    expect(storeLeftovers(root)).toEqual([]);
    expect(readFileSync(path.join(root, 'images.json'), 'utf8')).toBe(imagesBefore);
  });

  it('streams the failing step\'s output before the error', async () => {
    // (no check warnings: their summary comes between the steps and the error)
    const r = await tsbuild(root, [context({ Dockerfile: '# check=skip=all\nFROM busybox\nRUN echo to-stdout; echo to-stderr >&2; exit 1\n' })]);
    expect(r.stderr).toMatch(/^#2 \d\.\d{3} to-stdout\n#2 \d\.\d{3} to-stderr\n#2 ERROR: RUN failed: process "\/bin\/sh -c echo to-stdout; echo to-stderr >&2; exit 1" did not complete successfully: exit code: 1\ntsbuild: /m);
  });

  it('rejects a corrupt tarball on load without touching the store', async () => {
    const bad = path.join(tempDir(), 'corrupt.tar');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, Buffer.alloc(5000, 7));
    const r = await tsbuild(root, ['load', bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^tsbuild: .*corrupt\.tar is not a readable image archive/);
    expect(storeLeftovers(root)).toEqual([]);
    expect(readFileSync(path.join(root, 'images.json'), 'utf8')).toBe(imagesBefore);
  });
});

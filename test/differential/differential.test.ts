import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, tempDir } from '../helpers/fixtures.js';
import { okAs, shareReadOnly, testUser, tsbuildAs, userDir, type TestUser } from '../helpers/rootless.js';
import { compareImages, flattenArchive } from '../helpers/flatten.js';
import { buildahCases, ownCases, type DiffCase } from './cases.js';

const DOCKER = '/usr/bin/docker';
const here = path.dirname(fileURLToPath(import.meta.url));
const buildahData = path.join(here, '../golden/buildah/testdata');
const BASE = 'busybox'; // the name both builders know the busybox-static base by

const cases: DiffCase[] = [
  ...buildahCases((d) => readdirSync(path.join(buildahData, d), { withFileTypes: true }).map((e) => ({ name: e.name, dir: e.isDirectory() }))),
  ...ownCases,
];
const tally = { equal: 0, bothRejected: 0, skipped: 0, different: 0 };

interface Outcome {
  ok: boolean;
  log: string;
}

/** `--secret id=ID,src=FILE` for each of the case's secrets, written outside the context. */
function secretArgs(c: DiffCase, work: string): string[] {
  return Object.entries(c.secrets ?? {}).flatMap(([id, content]) => {
    const file = path.join(work, `secret-${id}`);
    writeFileSync(file, content);
    return ['--secret', `id=${id},src=${file}`];
  });
}

function dockerBuild(ctx: string, dockerfile: string, tag: string, c: DiffCase, out: string): Outcome {
  const args = ['build', '--no-cache', '-f', path.join(ctx, dockerfile), '-t', tag, ...(c.buildArgs ?? []).flatMap((a) => ['--build-arg', a]), ...secretArgs(c, path.dirname(out))];
  if (c.target) args.push('--target', c.target);
  const r = spawnSync(DOCKER, [...args, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '1', FROM_ENV: 'from-environment' }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return { ok: false, log: r.stderr };
  execFileSync(DOCKER, ['save', tag, '-o', out]);
  return { ok: true, log: '' };
}

/** tsbuild's build arguments for a case; the image ID goes to `iidfile`. */
function tsbuildArgs(ctx: string, dockerfile: string, c: DiffCase, work: string, iidfile: string): string[] {
  const args = ['-q', '-f', path.join(ctx, dockerfile), '--iidfile', iidfile, ...(c.buildArgs ?? []).flatMap((a) => ['--build-arg', a]), ...secretArgs(c, work)];
  if (c.target) args.push('--target', c.target);
  return [...args, ctx];
}

/** Every tsbuild build of the suite, root's and rootless, takes its timestamps from here: the two give one image ID. */
const TSBUILD_ENV = { FROM_ENV: 'from-environment', SOURCE_DATE_EPOCH: '1700000000' };

function tsbuildBuild(root: string, ctx: string, dockerfile: string, c: DiffCase, out: string): Outcome & { imageId?: string } {
  const iidfile = path.join(path.dirname(out), 'root.iid');
  const args = [BIN_PATH, '-o', out, ...tsbuildArgs(ctx, dockerfile, c, path.dirname(out), iidfile)];
  const r = spawnSync(process.execPath, args, { env: { ...process.env, TSBUILD_ROOT: root, ...TSBUILD_ENV }, encoding: 'utf8', timeout: 300_000 });
  return { ok: r.status === 0, log: r.stderr, ...(r.status === 0 ? { imageId: readFileSync(iidfile, 'utf8') } : {}) };
}

/** A failed build's last line, without the directory it names the Dockerfile by (relative to the working directory). */
function failure(stderr: string): string {
  return `failed: ${(stderr.trim().split('\n').at(-1) ?? '').replace(/^(tsbuild: )\S*\//, '$1')}`;
}

/** The same build as an ordinary user (rootless): the image ID it gives, or its last line when it fails. */
async function rootlessBuild(user: TestUser, home: string, ctx: string, dockerfile: string, c: DiffCase, work: string): Promise<string> {
  const out = userDir(user, 'rootless-out-');
  const r = await tsbuildAs(user, home, tsbuildArgs(ctx, dockerfile, c, work, path.join(out, 'iid')), { env: TSBUILD_ENV });
  return r.code === 0 ? readFileSync(path.join(out, 'iid'), 'utf8') : failure(r.stderr);
}

function lastError(log: string): string {
  const lines = log.trim().split('\n').filter((l) => /error|failed|tsbuild:/i.test(l));
  return (lines.at(-1) ?? log.trim().split('\n').at(-1) ?? '').slice(0, 300);
}

/** The case's context in a temp dir, with the busybox the Dockerfile names mapped to our base. */
function prepareContext(c: DiffCase, work: string): { ctx: string; dockerfile: string } {
  const ctx = path.join(work, 'ctx');
  if (c.files) {
    for (const [name, content] of Object.entries(c.files)) {
      mkdirSync(path.dirname(path.join(ctx, name)), { recursive: true });
      writeFileSync(path.join(ctx, name), content);
    }
  } else cpSync(c.buildahDir ? path.join(buildahData, c.buildahDir) : buildahData, ctx, { recursive: true, verbatimSymlinks: true });
  c.prepare?.(ctx);
  const dockerfile = c.dockerfile ?? 'Dockerfile';
  const file = path.join(ctx, dockerfile);
  // Buildah's cases name registry images; both builders get the same local busybox instead (their
  // subject is COPY/ADD/RUN semantics, which do not depend on the base's contents)
  writeFileSync(file, readFileSync(file, 'utf8').replace(/mirror\.gcr\.io\/(busybox|alpine)|quay\.io\/libpod\/centos:7/g, BASE));
  return { ctx, dockerfile };
}

describe.skipIf(lacks('root', 'docker'))('differential: BuildKit and tsbuild build the same images, and tsbuild rootless the same as root', () => {
  const root = tempDir('store-');
  let user: TestUser;
  let home: string;

  beforeAll(async () => {
    user = testUser();
    home = userDir(user, 'home-');
    const rootfs = busyboxRootfsTar();
    execFileSync(DOCKER, ['import', rootfs, `${BASE}:latest`]);
    execFileSync(process.execPath, [BIN_PATH, 'import', rootfs, `${BASE}:latest`], { env: { ...process.env, TSBUILD_ROOT: root } });
    const base = tempDir('base-');
    execFileSync(process.execPath, [BIN_PATH, 'save', BASE, '-o', path.join(base, 'base.tar')], { env: { ...process.env, TSBUILD_ROOT: root } });
    shareReadOnly(base);
    await okAs(user, home, ['load', '-i', path.join(base, 'base.tar')]);
  });

  afterAll(() => {
    const total = tally.equal + tally.bothRejected + tally.skipped + tally.different;
    console.log(`differential: ${total} cases: ${tally.equal} equal, ${tally.bothRejected} rejected by both, ${tally.skipped} skipped (documented), ${tally.different} different`);
  });

  it.each(cases)('$name', async (c) => {
    if (c.skip) {
      tally.skipped++;
      console.log(`skipped ${c.name}: ${c.skip}`);
      return;
    }
    const work = tempDir('diff-');
    const { ctx, dockerfile } = prepareContext(c, work);
    const tag = `tsbuild-diff-${c.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`.slice(0, 100);
    const ref = dockerBuild(ctx, dockerfile, tag, c, path.join(work, 'docker.tar'));
    const ours = tsbuildBuild(root, ctx, dockerfile, c, path.join(work, 'tsbuild.tar'));
    shareReadOnly(work);
    const rootless = await rootlessBuild(user, home, ctx, dockerfile, c, work);
    expect(rootless, 'rootless').toBe(ours.imageId ?? failure(ours.log));
    if (!ref.ok || !ours.ok) {
      if (ref.ok !== ours.ok) tally.different++;
      else tally.bothRejected++;
      console.log(`${c.name}: docker ${ref.ok ? 'built' : `rejected: ${lastError(ref.log)}`}; tsbuild ${ours.ok ? 'built' : `rejected: ${lastError(ours.log)}`}`);
      expect({ tsbuild: ours.ok ? 'built' : ours.log.trim().split('\n').at(-1), docker: ref.ok ? 'built' : 'rejected' }).toEqual({
        tsbuild: ref.ok ? 'built' : expect.stringMatching(/^tsbuild: /),
        docker: ours.ok ? 'built' : 'rejected',
      });
      return;
    }
    return Promise.all([flattenArchive(path.join(work, 'docker.tar'), path.join(work, 'd')), flattenArchive(path.join(work, 'tsbuild.tar'), path.join(work, 't'))]).then(([a, b]) => {
      const diffs = compareImages(a, b, c.ignorePaths, c.ignoreConfig);
      if (diffs.length === 0) tally.equal++;
      else {
        tally.different++;
        console.log(`${c.name}: ${diffs.length} differences:\n  ${diffs.slice(0, 15).join('\n  ')}`);
      }
      expect(diffs).toEqual([]);
    });
  });
});

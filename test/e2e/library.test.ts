import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A project that depends on tsbuild as an installed package would: node_modules/tsbuild, nothing else. */
function project(): string {
  const dir = tempDir('lib-user-');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user', type: 'module', private: true }));
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(PACKAGE, path.join(dir, 'node_modules', 'tsbuild'));
  return dir;
}

describe.skipIf(lacks('root'))("the library: import { build } from 'tsbuild'", () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox:1.36']);
  });

  it('builds with typed options, tells progress as events, and returns the image, its digest and each step\'s cache outcome; errors are typed with their line', () => {
    const dir = project();
    const ctx = context({ Dockerfile: 'FROM busybox:1.36\nARG V=1\nRUN echo "$V" | tee /v\nCMD ["cat", "/v"]\n' });
    const bad = context({ Dockerfile: 'FROM busybox:1.36\nRUN exit 7\n' });
    writeFileSync(
      path.join(dir, 'main.mjs'),
      `import { build, checkDockerfile, BuildStepError, TsbuildError } from 'tsbuild';
const root = ${JSON.stringify(root)};
const events = [];
const first = await build({ context: ${JSON.stringify(ctx)}, tags: ['lib:1'], root, onEvent: (e) => events.push(e) });
const again = await build({ context: ${JSON.stringify(ctx)}, tags: ['lib:1'], root, buildArgs: { V: '2' } });
let failure;
try {
  await build({ context: ${JSON.stringify(bad)}, root });
} catch (err) {
  failure = { step: err instanceof BuildStepError, typed: err instanceof TsbuildError, line: err.location?.line, message: err.message };
}
const check = await checkDockerfile({ context: ${JSON.stringify(ctx)}, root });
console.log(JSON.stringify({ first, again, types: [...new Set(events.map((e) => e.type))], log: events.find((e) => e.type === 'log'), failure, check: check.warnings.map((w) => w.rule.name) }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8' }));
    expect(out.first.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.first.tags).toEqual(['lib:1']);
    expect(out.first.steps.map((s: { name: string; cached: boolean; miss?: { reason: string } }) => [s.name, s.cached, s.miss?.reason])).toEqual([
      ['[1/4] FROM docker.io/library/busybox:1.36', false, undefined],
      ['[2/4] ARG V=1', false, undefined],
      ['[3/4] RUN echo "1" | tee /v', false, 'no earlier build of this step'],
      ['[4/4] CMD ["cat", "/v"]', false, undefined],
    ]);
    expect(out.again.steps[2]).toMatchObject({ cached: false, miss: { cause: 'build-arg', name: 'V', before: '1', after: '2' } });
    expect(out.again.imageId).not.toBe(out.first.imageId);
    expect(out.types).toEqual(expect.arrayContaining(['step', 'cache-miss', 'log', 'done', 'info']));
    expect(out.log.data.type).toBe('Buffer'); // a log's bytes as a Buffer (JSON.stringify shows its type)
    expect(out.failure).toEqual({ step: true, typed: true, line: 2, message: 'RUN failed: process "/bin/sh -c exit 7" did not complete successfully: exit code: 7' });
    expect(out.check).toEqual([]);
  });

  it('ships its types: a TypeScript user of the entry point compiles against the .d.ts files', () => {
    const dir = project();
    writeFileSync(
      path.join(dir, 'main.ts'),
      `import { build, type BuildOutcome, type BuildEvent, type StepOutcome } from 'tsbuild';
const seen: BuildEvent['type'][] = [];
export async function run(): Promise<string> {
  const out: BuildOutcome = await build({ context: '.', tags: ['x'], noCache: true, buildArgs: { A: '1' }, onEvent: (e) => seen.push(e.type) });
  const steps: StepOutcome[] = out.steps;
  return \`\${out.imageId} \${out.digest} \${steps.filter((s) => s.cached).length}\`;
}
// @ts-expect-error: an option the CLI has no flag for is refused
build({ context: '.', colour: 'blue' });
`,
    );
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(PACKAGE, 'node_modules/@types')] }, files: ['main.ts'] }));
    execFileSync(process.execPath, [path.join(PACKAGE, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, encoding: 'utf8' });
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PACKAGE, encoding: 'utf8' }))[0].files.map((f: { path: string }) => f.path);
    expect(packed).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/api/build.d.ts', 'dist/api/check.d.ts', 'bin/tsbuild.cjs']));
  });
});

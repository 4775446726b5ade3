import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A copy of the CLI (bin/, the bundle and its code cache) to damage. */
function cliCopy(): string {
  const dir = tempDir('cli-');
  for (const f of ['bin/tsbuild.cjs', 'bin/bundle.cjs', 'dist/tsbuild.cjs', 'dist/tsbuild.cjs.cache', 'package.json']) {
    mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    copyFileSync(path.join(repo, f), path.join(dir, f));
  }
  return dir;
}

const run = (dir: string, args: string[]) => spawnSync(process.execPath, [path.join(dir, 'bin/tsbuild.cjs'), ...args], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: tempDir('store-') } });
const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;

describe('the command line fails in one line, or not at all, whatever its files are', () => {
  it('a damaged code cache is not used (V8 would crash on it, or run wrong code, without a word)', () => {
    const dir = cliCopy();
    const cache = path.join(dir, 'dist/tsbuild.cjs.cache');
    const bytes = readFileSync(cache);
    for (let i = 1000; i < bytes.length - 64; i += 997) bytes[i] ^= 0xff;
    writeFileSync(cache, bytes);
    const r = run(dir, ['--version']);
    expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, version, '']);
  });

  it('a cut-short bundle is one line naming the fix', () => {
    const dir = cliCopy();
    const bundle = path.join(dir, 'dist/tsbuild.cjs');
    writeFileSync(bundle, readFileSync(bundle).subarray(0, 300_000));
    const r = run(dir, ['images']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tsbuild: error: cannot load tsbuild \(run `npm run build`\): /)]);
  });

  it('a reader that goes away (tsbuild images | true) ends it quietly', () => {
    const err = path.join(tempDir(), 'err');
    execFileSync('sh', ['-c', `TSBUILD_ROOT=${tempDir('store-')} ${process.execPath} ${path.join(repo, 'bin/tsbuild.cjs')} --help 2>${err} | true`]);
    expect(readFileSync(err, 'utf8')).toBe('');
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** The copy's code cache made again as npm run build makes it (scripts/code-cache.js): no command learnt yet. */
function remakeCache(dir: string): void {
  rmSync(path.join(dir, 'dist/tsbuild.cjs.cache'));
  const remake = `const b = require(${JSON.stringify(path.join(dir, 'bin/bundle.cjs'))}); const l = b.loadBundle(); l.exports.preloadCommands().then(() => require('fs').writeFileSync(b.cacheFile, l.cache()))`;
  execFileSync(process.execPath, ['-e', remake]);
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

  it('the code cache learns each command once, from its first run that went well', () => {
    const dir = cliCopy();
    const cache = path.join(dir, 'dist/tsbuild.cjs.cache');
    const learnt = () => {
      const bytes = readFileSync(cache);
      return bytes.subarray(70, 70 + bytes.readUInt16BE(68)).toString('latin1');
    };
    remakeCache(dir);
    const made = statSync(cache);
    expect(learnt()).toBe('');
    expect(run(dir, ['history', 'nothing']).status).toBe(1); // a command that failed teaches nothing
    expect(statSync(cache).ino).toBe(made.ino);
    expect(run(dir, ['images']).status).toBe(0);
    const once = statSync(cache);
    expect([learnt(), once.size > made.size]).toEqual(['images', true]); // with the functions images ran
    expect(run(dir, ['images']).status).toBe(0);
    expect(statSync(cache).ino).toBe(once.ino); // not written again
    const r = run(dir, ['--version']);
    expect([r.status, r.stdout.trim(), learnt()]).toEqual([0, version, 'images,help']);
  });

  it('an install the user cannot write learns into the user\'s own cache directory, and reads it first', () => {
    const dir = cliCopy();
    remakeCache(dir);
    const dist = path.join(dir, 'dist');
    const installed = statSync(path.join(dist, 'tsbuild.cjs.cache'));
    const xdg = tempDir('xdg-');
    // the install read-only for this one command, as a package root installed and a user runs
    const asUser = (args: string[]) =>
      spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind -r ${dist} ${dist} && exec "$0" "$@"`, process.execPath, path.join(dir, 'bin/tsbuild.cjs'), ...args], {
        encoding: 'utf8',
        env: { ...process.env, TSBUILD_ROOT: tempDir('store-'), XDG_CACHE_HOME: xdg },
      });
    expect(asUser(['images'])).toMatchObject({ status: 0, stderr: '' });
    const files = readdirSync(path.join(xdg, 'tsbuild'));
    expect(files).toEqual([expect.stringMatching(/^code-[0-9a-f]{64}\.cache$/)]);
    const mine = path.join(xdg, 'tsbuild', files[0]!);
    const bytes = readFileSync(mine);
    expect(bytes.subarray(70, 70 + bytes.readUInt16BE(68)).toString('latin1')).toBe('images');
    expect(statSync(path.join(dist, 'tsbuild.cjs.cache')).mtimeMs).toBe(installed.mtimeMs);
    // read first from then on: the next command adds to it, and the install's cache stays as it was
    expect(asUser(['--version'])).toMatchObject({ status: 0, stderr: '' });
    const again = readFileSync(mine);
    expect(again.subarray(70, 70 + again.readUInt16BE(68)).toString('latin1')).toBe('images,help');
    expect(statSync(path.join(dist, 'tsbuild.cjs.cache')).mtimeMs).toBe(installed.mtimeMs);
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

describe('each command defines only its own flags, and help still shows them all', () => {
  const cli = path.join(repo, 'bin/tsbuild.cjs');
  const tsb = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: tempDir('store-') } });

  it('--help lists every command with its arguments, and the program\'s flags', () => {
    const r = tsb(['--help']);
    expect(r.status).toBe(0);
    const listed = r.stdout.split('Commands:\n')[1]!.split('\n').flatMap((l) => /^ {2}(\S+)/.exec(l)?.[1] ?? []);
    expect(listed).toEqual(['build', 'run', 'pull', 'push', 'tag', 'login', 'logout', 'load', 'import', 'images', 'history', 'inspect', 'save', 'rmi', 'system', 'prune', 'fsck', 'help']);
    expect(r.stdout).toMatch(/^ {2}-v, --version +output the version number$/m);
    expect(r.stdout).toMatch(/^ {2}history \[options\] <image> +show the history of an image$/m);
  });

  it('a command after --root DIR or --root=DIR runs with its own flags; a word that is none is the build context', () => {
    const store = tempDir('store-');
    expect(tsb(['--root', store, 'prune', '-a'])).toMatchObject({ status: 0, stdout: 'Deleted images: 0, build cache entries: 0, layers: 0, blobs: 0, cache mounts: 0\nTotal reclaimed space: 0B\n' });
    expect(tsb([`--root=${store}`, 'history', '--no-trunc'])).toMatchObject({ status: 1, stderr: "error: missing required argument 'image'\n" });
    expect(tsb(['--root', store, 'imagse'])).toMatchObject({ status: 1, stderr: 'tsbuild: unable to prepare context: path "imagse" not found or not a directory\n' });
    expect(tsb(['help', 'prune']).stdout).toMatch(/^ {2}--keep-storage <SIZE> /m);
  });
});

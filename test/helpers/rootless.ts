// An ordinary user with subordinate ids, made by the tests, and tsbuild run as that user.
import { execa } from 'execa';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliResult } from './cli.js';
import { tempDir } from './fixtures.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

function hasRange(file: string, name: string): boolean {
  return readFileSync(file, 'utf8')
    .split('\n')
    .some((l) => l.startsWith(`${name}:`));
}

function idOf(name: string, flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
}

/**
 * An ordinary user, made once (useradd; usermod --add-subuids when the distribution's useradd gave
 * it no subordinate ids). `subids: false` makes one without any, for the error it must get.
 */
export function testUser(name = 'tsbuild-rootless', subids = true): TestUser {
  if (spawnSync('id', ['-u', name]).status !== 0) execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', name]);
  const has = hasRange('/etc/subuid', name) && hasRange('/etc/subgid', name);
  if (subids && !has) execFileSync('usermod', ['--add-subuids', '300000-365535', '--add-subgids', '300000-365535', name]);
  if (!subids && has) execFileSync('usermod', ['--del-subuids', '0-4294967294', '--del-subgids', '0-4294967294', name]);
  return { name, uid: idOf(name, '-u'), gid: idOf(name, '-g') };
}

/** Lets everyone reach `p` through the directories above it (search permission only). */
function reachable(p: string): void {
  for (let d = path.dirname(p); d !== '/'; d = path.dirname(d)) if ((statSync(d).mode & 0o001) === 0) chmodSync(d, statSync(d).mode | 0o001);
}

/** A directory of the user's own (its HOME, a store, a context it writes). */
export function userDir(user: TestUser, prefix = 'rootless-'): string {
  const dir = tempDir(prefix);
  chownSync(dir, user.uid, user.gid);
  reachable(dir);
  return dir;
}

/** Lets everyone read `dir` and what is in it (a context, an archive made by root). */
export function shareReadOnly(...paths: string[]): void {
  for (const p of paths) {
    execFileSync('chmod', ['-R', 'a+rX', p]);
    reachable(p);
  }
}

let installed: string | undefined;

/**
 * tsbuild's files the command needs (bin/, dist/, the native build, zstd-napi), copied where any
 * user can read them: the checkout may sit in root's home. Returns the copy's bin/tsbuild.cjs.
 */
export function installedForUsers(): string {
  if (installed) return installed;
  const dir = tempDir('tsbuild-pkg-');
  for (const p of ['bin', 'dist', 'package.json', 'binding.gyp', 'build/Release/tsbuild-sandbox', 'build/Release/tsbuild-userns', 'build/Release/tsbuild_native.node']) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    cpSync(path.join(REPO, p), path.join(dir, p), { recursive: true });
  }
  for (const p of ['binding.js', 'package.json', 'build/Release/binding.node']) {
    const to = path.join(dir, 'node_modules/zstd-napi', p);
    mkdirSync(path.dirname(to), { recursive: true });
    cpSync(path.join(REPO, 'node_modules/zstd-napi', p), to);
  }
  shareReadOnly(dir);
  installed = path.join(dir, 'bin/tsbuild.cjs');
  return installed;
}

/**
 * Runs tsbuild as `user`, as that user would from a shell: its own HOME (the store defaults to
 * HOME/.local/share/tsbuild), the machine's PATH, nothing else of the test's environment.
 */
export async function tsbuildAs(user: TestUser, home: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [installedForUsers(), ...args], {
    uid: user.uid,
    gid: user.gid,
    cwd: opts.cwd ?? home,
    env: { HOME: home, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', USER: user.name, ...opts.env },
    extendEnv: false,
    reject: false,
    timeout: 300_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Like tsbuildAs, failing the test with the output when the command fails. */
export async function okAs(user: TestUser, home: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const r = await tsbuildAs(user, home, args, opts);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} as ${user.name} exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
}

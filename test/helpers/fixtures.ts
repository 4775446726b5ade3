import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A new empty directory, inside the test run's own directory (TSBUILD_TEST_TMP, made and removed
 * by global-setup.ts) when there is one: stores, contexts and archives go with the run.
 */
export function tempDir(prefix = 'tsbuild-test-'): string {
  return mkdtempSync(path.join(process.env.TSBUILD_TEST_TMP || os.tmpdir(), prefix));
}

const BUSYBOX = '/bin/busybox';

/**
 * A busybox root filesystem, made in code from Debian's busybox-static: /bin/busybox and its applet
 * links, /etc/passwd and /etc/group with root and a user, /tmp 1777, and `extra` files (path →
 * content). Returns the rootfs tarball.
 */
export function busyboxRootfsTar(dir = tempDir('busybox-'), extra: Record<string, string> = {}): string {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install busybox-static`);
  const root = path.join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'home/app']) mkdirSync(path.join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', path.join(root, 'bin', a));
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n');
  context(extra, root);
  const tar = path.join(dir, 'busybox.tar');
  execFileSync('tar', ['--numeric-owner', '-C', root, '-cf', tar, '.']);
  return tar;
}

/** Writes files (path → content) into a new context directory. */
export function context(files: Record<string, string>, dir = tempDir('ctx-')): string {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return dir;
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Random bytes mixed with runs of repeated text: blocks that compress, blocks that don't, and back-references across them. */
export function mixedBytes(size: number): Buffer {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(2000));
  const parts: Buffer[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const p = i % 2 ? randomBytes(Math.min(50_000, size - n)) : text.subarray(0, Math.min(text.length, size - n));
    parts.push(p);
    n += p.length;
  }
  return Buffer.concat(parts, size);
}

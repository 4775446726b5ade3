#!/usr/bin/env node
// CommonJS, so that nothing has used libuv's thread pool yet (the ES module loader reads files on
// it): its size can still be set. Layer compression and big file writes run there, one job per
// thread; the default of 4 threads would leave cores idle on bigger machines.
'use strict';
const { existsSync } = require('node:fs');
const os = require('node:os');

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, os.availableParallelism()));

/** Whatever fails before main() can report it says so in one line too (a half-written bundle, no dist/). */
function fail(what, err) {
  process.stderr.write(`tsbuild: error: ${what}: ${err?.message ?? String(err)}\n`);
  if (process.env.TSBUILD_DEBUG) process.stderr.write(`${err?.stack}\n`);
  process.exitCode = 1;
}

// `tsbuild images | head -1`: the reader has gone, and there is nobody left to tell
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  fail('cannot write to standard output', err);
  process.exit(1);
});

/**
 * Commands that only read the store's records (files the user owns either way) run as the user;
 * every other command of an ordinary user runs as root of a user namespace of its own (see
 * native/userns.c), where it can mount overlays and own files as the image's ids. So does root
 * without CAP_SYS_ADMIN (a container started without privileges), which cannot mount either.
 */
const AS_USER = new Set(['images', 'history', 'inspect', 'login', 'logout', 'help', '-h', '--help', '-v', '--version']);

const CAP_SYS_ADMIN = 21n;

function canMount() {
  try {
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'));
    return !eff || ((BigInt(`0x${eff[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return true; // no /proc to tell: as before
  }
}

function needsUserNamespace(args) {
  if (process.env.TSBUILD_USERNS || AS_USER.has(args[0])) return false;
  return process.getuid?.() !== 0 || !canMount();
}

/**
 * Runs this same command again inside the user namespace and ends as it ends. Node cannot replace
 * itself (no execve), so this process waits and passes every signal on (one sent to the whole
 * process group, as a terminal's Ctrl-C, then arrives twice: main() takes the two as one); the
 * command dies with it (native/userns.c sets its parent-death signal). TSBUILD_USERNS tells the
 * command not to do this again; TSBUILD_ROOTLESS that its store is the user's, not root's.
 */
function reexecInUserNamespace() {
  const { spawn } = require('node:child_process');
  const path = require('node:path');
  const helper = path.join(__dirname, '..', 'build', 'Release', 'tsbuild-userns');
  if (!existsSync(helper)) return fail('cannot run rootless', new Error(`${helper} is not built (run 'npm install')`));
  const child = spawn(helper, [process.execPath, ...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TSBUILD_USERNS: '1', ...(process.getuid() !== 0 ? { TSBUILD_ROOTLESS: '1' } : {}) },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => fail('cannot run rootless', err));
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

function runMain() {
  let loaded;
  let learn = () => {};
  try {
    const { bundleFile, loadBundle } = require('./bundle.cjs');
    // dist/cli/main.js is the same code unbundled, for when only `tsc` has run.
    if (existsSync(bundleFile)) {
      const bundle = loadBundle();
      learn = bundle.learn;
      loaded = Promise.resolve(bundle.exports);
    } else {
      loaded = import('../dist/cli/main.js');
    }
  } catch (err) {
    loaded = Promise.reject(err);
  }
  loaded
    .then(({ main, invokedCommand }) => {
      if (typeof main !== 'function') throw new Error('dist/tsbuild.cjs has no main()');
      const argv = process.argv.slice(2);
      return main(argv).then(
        (code) => {
          process.exitCode = code;
          // the code cache learns what a command that went well compiled (see bundle.cjs); it
          // only saves time, so a cache that cannot be written is never the command's failure
          try {
            if (code === 0) learn(invokedCommand(argv) ?? 'help');
          } catch {}
        },
        (err) => fail('unexpected failure', err),
      );
    })
    .catch((err) => fail('cannot load tsbuild (run `npm run build`)', err));
}

if (needsUserNamespace(process.argv.slice(2))) reexecInUserNamespace();
else runMain();

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

let loaded;
try {
  const { bundleFile, loadBundle } = require('./bundle.cjs');
  // dist/cli/main.js is the same code unbundled, for when only `tsc` has run.
  loaded = existsSync(bundleFile) ? Promise.resolve(loadBundle().exports) : import('../dist/cli/main.js');
} catch (err) {
  loaded = Promise.reject(err);
}
loaded.then(
  ({ main }) => {
    if (typeof main !== 'function') throw new Error('dist/tsbuild.cjs has no main()');
    return main(process.argv.slice(2)).then(
      (code) => {
        process.exitCode = code;
      },
      (err) => fail('unexpected failure', err),
    );
  },
).catch((err) => fail('cannot load tsbuild (run `npm run build`)', err));

#!/usr/bin/env node
// CommonJS, so that nothing has used libuv's thread pool yet (the ES module loader reads files on
// it): its size can still be set. Layer compression and big file writes run there, one job per
// thread; the default of 4 threads would leave cores idle on bigger machines.
'use strict';
const { existsSync } = require('node:fs');
const os = require('node:os');

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, os.availableParallelism()));
const { bundleFile, loadBundle } = require('./bundle.cjs');

// dist/cli/main.js is the same code unbundled, for when only `tsc` has run.
const loaded = existsSync(bundleFile) ? Promise.resolve(loadBundle().exports) : import('../dist/cli/main.js');
loaded.then(({ main }) =>
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }),
);

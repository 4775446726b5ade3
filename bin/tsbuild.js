#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { bundleFile, loadBundle } from './bundle.js';

// dist/cli/main.js is the same code unbundled, for when only `tsc` has run.
const { main } = existsSync(bundleFile) ? loadBundle().exports : await import('../dist/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

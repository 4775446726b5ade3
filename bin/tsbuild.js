#!/usr/bin/env node
// The CLI is bundled into one module (dist/tsbuild.mjs): one file to load instead of a few hundred
// makes every command start about 100 ms sooner. dist/cli/main.js is the same code, unbundled.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/tsbuild.mjs', import.meta.url);
const { main } = await import(existsSync(bundle) ? bundle.href : '../dist/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

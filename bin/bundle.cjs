// The CLI is bundled into one CommonJS file (dist/tsbuild.cjs) and compiled with V8's code cache
// (dist/tsbuild.cjs.cache, written by `npm run build`): one file to read instead of a few hundred,
// and no parsing or compiling of it, make every command start sooner. V8 itself refuses a cache
// from another Node version, but checks only the source's length: the cache starts with the
// sha256 of the exact text it was compiled from, and is used only for that text.
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const bundleFile = path.join(__dirname, '..', 'dist', 'tsbuild.cjs');
const cacheFile = `${bundleFile}.cache`;

/** Compiles and runs the bundle; returns its exports, and the cache for it (a Buffer to write). */
function loadBundle() {
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundleFile, 'utf8')}\n})`;
  const textHash = createHash('sha256').update(wrapped).digest();
  let cachedData;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.subarray(0, 32).equals(textHash)) cachedData = cache.subarray(32);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(wrapped, { filename: bundleFile, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
  return { exports: module.exports, cache: () => Buffer.concat([textHash, script.createCachedData()]) };
}

module.exports = { bundleFile, cacheFile, loadBundle };

// The CLI is bundled into one CommonJS file (dist/tsbuild.cjs) and compiled with V8's code cache
// (dist/tsbuild.cjs.cache, written by `npm run build`): one file to read instead of a few hundred,
// and no parsing or compiling of it, make every command start sooner. V8 itself refuses a cache
// from another Node version, but checks only the source's length, and not its own data (damaged
// data it accepts crashes the process without a word, or runs wrong code): the cache is
// [sha256 of the exact text it was compiled from][sha256 of the V8 data][V8 data], and is used
// only for that text, and only when the data is whole.
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
    const data = cache.subarray(64);
    if (cache.subarray(0, 32).equals(textHash) && cache.subarray(32, 64).equals(createHash('sha256').update(data).digest())) cachedData = data;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(wrapped, { filename: bundleFile, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
  const cache = () => {
    const data = script.createCachedData();
    return Buffer.concat([textHash, createHash('sha256').update(data).digest(), data]);
  };
  return { exports: module.exports, cache };
}

module.exports = { bundleFile, cacheFile, loadBundle };

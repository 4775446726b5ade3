// The CLI is bundled into one CommonJS file (dist/tsbuild.cjs) and compiled with V8's code cache
// (dist/tsbuild.cjs.cache, written by `npm run build`): one file to read instead of a few hundred,
// and no parsing or compiling of it, make every command start sooner. V8 itself refuses a cache
// from another Node version, but checks only the source's length: the cache starts with the
// sha256 of the source it was made from, and is used only for that source.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

export const bundleFile = fileURLToPath(new URL('../dist/tsbuild.cjs', import.meta.url));
export const cacheFile = `${bundleFile}.cache`;

/** Compiles and runs the bundle; returns its exports, and the cache for it (a Buffer to write). */
export function loadBundle() {
  const source = readFileSync(bundleFile);
  const sourceHash = createHash('sha256').update(source).digest();
  let cachedData;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.subarray(0, 32).equals(sourceHash)) cachedData = cache.subarray(32);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename: bundleFile, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile));
  return { exports: module.exports, cache: () => Buffer.concat([sourceHash, script.createCachedData()]) };
}

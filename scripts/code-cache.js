// Writes V8's code cache for the bundle (see bin/bundle.cjs), after running its top level and
// loading every command's modules, so that the functions those run are compiled into the cache too.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const { bundleFile, cacheFile, loadBundle } = createRequire(import.meta.url)('../bin/bundle.cjs');
// One character beyond ASCII (a regex's "\u00b5" written as itself) makes V8 hold the whole
// megabyte as a two-byte string, decoded slowly at every start: write such characters escaped.
const text = readFileSync(bundleFile, 'latin1');
const wide = text.search(/[^\x00-\x7f]/);
if (wide >= 0) {
  const line = text.slice(0, wide).split('\n').length;
  throw new Error(`${bundleFile}:${line}: a character beyond ASCII; write it as a \\u escape in the source`);
}
// vm.Script, which runs the bundle, has no import(): a module esbuild leaves outside the bundle
// (node:*) must be required (createRequire), not imported, where it is loaded late
const late = /\bimport\(\s*["'`]/.exec(text);
if (late) throw new Error(`${bundleFile}:${text.slice(0, late.index).split('\n').length}: a dynamic import() of a module outside the bundle; use createRequire`);
const bundle = loadBundle();
await bundle.exports.preloadCommands();
const tmp = `${cacheFile}.tmp-${process.pid}`; // two builds at once each write their own
writeFileSync(tmp, bundle.cache());
renameSync(tmp, cacheFile);

// Writes V8's code cache for the bundle (see bin/bundle.cjs), after running its top level and
// loading every command's modules, so that the functions those run are compiled into the cache too.
import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const { cacheFile, loadBundle } = createRequire(import.meta.url)('../bin/bundle.cjs');
const bundle = loadBundle();
await bundle.exports.preloadCommands();
const tmp = `${cacheFile}.tmp-${process.pid}`; // two builds at once each write their own
writeFileSync(tmp, bundle.cache());
renameSync(tmp, cacheFile);

// Writes V8's code cache for the bundle (see bin/bundle.cjs), after running its top level so the
// functions that runs compile are in the cache too.
import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const { cacheFile, loadBundle } = createRequire(import.meta.url)('../bin/bundle.cjs');
writeFileSync(`${cacheFile}.tmp`, loadBundle().cache());
renameSync(`${cacheFile}.tmp`, cacheFile);

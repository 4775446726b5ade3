// Writes V8's code cache for the bundle (see bin/bundle.js), after running its top level so the
// functions that runs compile are in the cache too.
import { renameSync, writeFileSync } from 'node:fs';
import { cacheFile, loadBundle } from '../bin/bundle.js';

writeFileSync(`${cacheFile}.tmp`, loadBundle().cache());
renameSync(`${cacheFile}.tmp`, cacheFile);

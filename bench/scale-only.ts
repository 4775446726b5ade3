// Runs only bench/scale.ts (for trying it): BENCH_RUNS and BENCH_BIG_GIB as for npm run bench.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { busyboxRootfsTar } from '../test/helpers/fixtures.js';
import { benchAlone } from './alone.js';
import { bigLayersBench, bigStoreBench, manyFilesBench } from './scale.js';

const a = benchAlone('scale');
const root = path.join(a.work, 'store');
const rootfs = busyboxRootfsTar(a.work, {});
a.sh(a.tsb(root, `import ${rootfs} bench-busybox`));
a.sh(`/usr/bin/docker import ${rootfs} bench-busybox >/dev/null`);
const t = { ...a, docker: '/usr/bin/docker', root, rootfs };
const seed = a.context('seed', 'FROM bench-busybox\nRUN echo "Hello world" > /tmp/newfile\n');
const which = process.argv.slice(2);
if (which.length === 0 || which.includes('many')) console.log(manyFilesBench(t).join('\n'));
if (which.length === 0 || which.includes('store')) console.log(bigStoreBench(t, seed).join('\n'));
if (which.length === 0 || which.includes('layers')) console.log(bigLayersBench(t).join('\n'));
rmSync(a.work, { recursive: true, force: true });

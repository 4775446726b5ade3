// Runs only bench/registry.ts (for trying it, or after a full bench stopped before it): BENCH_RUNS as for npm run bench.
import { rmSync } from 'node:fs';
import { busyboxRootfsTar } from '../test/helpers/fixtures.js';
import { benchAlone } from './alone.js';
import { registryBench } from './registry.js';

const t = benchAlone('registry');
try {
  const lines = await registryBench({ ...t, docker: '/usr/bin/docker', rootfs: busyboxRootfsTar(t.work, {}) });
  console.log(lines.join('\n'));
} finally {
  rmSync(t.work, { recursive: true, force: true });
}

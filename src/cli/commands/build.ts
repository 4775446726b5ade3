// The build command: its flags turned into build() options, then -o.
import { writeFileSync } from 'node:fs';
import { buildInStore, type BuildRequest } from '../../api/build.js';
import type { BuildOptions } from '../../builder/options.js';
import { UsageError } from '../../errors.js';
import { parsePlatform } from '../../image/platform.js';
import { parseCacheExport, parseCacheImport } from '../../remote-cache/spec.js';
import type { ResourceLimits } from '../../sandbox/cgroups.js';
import { parseSize } from '../../util/units.js';
import { parseOutputSpec } from '../../archive/output-spec.js';
import { makeProgress, type ProgressMode } from '../../progress/progress.js';
import type { Store } from '../../store/store.js';
import type { Io } from '../io.js';
import { registryOptions, type RegistryFlags } from '../registry-flags.js';

export interface BuildFlags extends RegistryFlags {
  tag: string[];
  file?: string;
  output?: string;
  quiet?: boolean;
  iidfile?: string;
  buildArg: string[];
  target?: string;
  secret: string[];
  ssh: string[];
  allow: string[];
  memory?: string;
  memorySwap?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  pidsLimit?: string;
  ulimit: string[];
  shmSize?: string;
  network?: string;
  runtime?: string;
  /** commander's --no-cache: false when given. */
  cache: boolean;
  progress: string;
  jobs?: number;
  /** --no-cache-filter values (commander names a --no- option after what it negates). */
  cacheFilter: string[];
  platform?: string;
  pull?: boolean;
  push?: boolean;
  cacheTo: string[];
  cacheFrom: string[];
  onError: string;
}

/** `--secret id=ID,src=PATH` (or `source=`), `id=ID,env=VAR`, or `id=ID` (the variable ID). */
function parseSecrets(list: string[]): Record<string, { src?: string; env?: string }> {
  const out: Record<string, { src?: string; env?: string }> = {};
  for (const item of list) {
    const kv = Object.fromEntries(item.split(',').map((f) => [f.slice(0, f.indexOf('=') < 0 ? f.length : f.indexOf('=')), f.includes('=') ? f.slice(f.indexOf('=') + 1) : '']));
    const id = kv.id;
    if (!id) throw new UsageError(`invalid --secret "${item}": expected id=ID,src=PATH or id=ID,env=VAR`);
    const src = kv.src ?? kv.source;
    if (src !== undefined) out[id] = { src };
    else out[id] = { env: kv.env ?? id };
  }
  return out;
}

function bytes(flag: string, v: string): number {
  const n = v === '-1' ? -1 : parseSize(v);
  if (n === undefined || (n <= 0 && n !== -1)) throw new UsageError(`invalid ${flag} "${v}": expected a size such as 512m or 2g`);
  return n;
}

function integer(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`invalid ${flag} "${v}": expected an integer of at least ${min}`);
  return n;
}

/** docker build's resource flags, checked as dockerd checks them. */
function parseLimits(f: BuildFlags): ResourceLimits {
  const l: ResourceLimits = {};
  if (f.memory !== undefined) l.memory = bytes('--memory', f.memory);
  if (l.memory !== undefined && l.memory < 6 << 20) throw new UsageError(`invalid --memory "${f.memory}": the minimum is 6MB, as Docker's`);
  if (f.memorySwap !== undefined) {
    if (l.memory === undefined) throw new UsageError('--memory-swap needs --memory');
    l.memorySwap = bytes('--memory-swap', f.memorySwap);
    if (l.memorySwap !== -1 && l.memorySwap < l.memory) throw new UsageError('--memory-swap must be at least --memory (it is memory plus swap), or -1');
  }
  if (f.cpuQuota !== undefined) l.cpuQuota = integer('--cpu-quota', f.cpuQuota, 1000);
  if (f.cpuPeriod !== undefined) l.cpuPeriod = integer('--cpu-period', f.cpuPeriod, 1000);
  if (f.cpuShares !== undefined) l.cpuShares = integer('--cpu-shares', f.cpuShares, 2);
  if (f.cpusetCpus !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(f.cpusetCpus)) throw new UsageError(`invalid --cpuset-cpus "${f.cpusetCpus}": expected a list such as 0-1 or 0,2`);
    l.cpusetCpus = f.cpusetCpus;
  }
  if (f.pidsLimit !== undefined) l.pidsLimit = integer('--pids-limit', f.pidsLimit, -1);
  return l;
}

/** `--ulimit nofile=1024:2048` (hard defaults to soft) → `nofile:1024:2048`. */
function parseUlimit(v: string): string {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
  const names = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as'];
  if (!m || !names.includes(m[1]!)) throw new UsageError(`invalid --ulimit "${v}": expected NAME=SOFT[:HARD] with NAME one of ${names.join(', ')}`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (hard !== -1 && (soft === -1 || soft > hard)) throw new UsageError(`invalid --ulimit "${v}": the soft limit is above the hard one`);
  return `${m[1]}:${soft}:${hard}`;
}

/** `--network default|none|host` (docker build's; `bridge` is what Docker calls its default). */
function parseNetwork(v: string | undefined): BuildOptions['network'] {
  if (v === undefined) return undefined;
  if (v === 'default' || v === 'bridge') return 'default';
  if (v === 'none' || v === 'host') return v;
  throw new UsageError(`invalid --network "${v}": default, none or host`);
}

function parseOnError(v: string): 'fail' | 'shell' {
  if (v !== 'fail' && v !== 'shell') throw new UsageError(`invalid --on-error "${v}": fail or shell`);
  return v;
}

export function parseBuildArgs(list: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid --build-arg "${item}": expected KEY=VALUE or KEY`);
    if (eq < 0) out[item] = undefined;
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export async function buildCommand(store: Store, context: string, flags: BuildFlags, io: Io): Promise<void> {
  const modes = ['auto', 'tty', 'plain', 'quiet', 'rawjson'];
  if (!modes.includes(flags.progress)) throw new UsageError(`invalid --progress "${flags.progress}": one of ${modes.join(', ')}`);
  const spec = flags.output !== undefined ? parseOutputSpec(flags.output) : undefined;
  if (spec?.type !== 'registry' && spec?.dest === '-') {
    if (flags.quiet) throw new UsageError('-q prints the image ID on standard output, where -o dest=- writes the archive: use one of them');
    if (process.stdout.isTTY) throw new UsageError('refusing to write an image archive to a terminal: redirect standard output, or give dest=FILE');
  }
  const cacheTo = flags.cacheTo.map(parseCacheExport);
  const cacheFrom = flags.cacheFrom.map(parseCacheImport);
  const pushes = flags.push || spec?.type === 'registry';
  // the modules of what is asked for only: a plain cached build loads neither the archive writer nor the sandbox's
  const ssh = flags.ssh.length > 0 ? (await import('../../builder/ssh-agent.js')).parseSsh(flags.ssh) : {};
  const runtime = flags.runtime ? (await import('../../sandbox/oci-runtime.js')).runtimePath(flags.runtime) : undefined;
  const request: BuildRequest = {
    context,
    file: flags.file,
    tags: flags.tag,
    buildArgs: parseBuildArgs(flags.buildArg),
    target: flags.target,
    secrets: parseSecrets(flags.secret),
    ssh,
    limits: parseLimits(flags),
    ...(runtime ? { runtime } : {}),
    ulimits: flags.ulimit.map(parseUlimit),
    shmSize: flags.shmSize !== undefined ? bytes('--shm-size', flags.shmSize) : undefined,
    network: parseNetwork(flags.network),
    allow: flags.allow.map((a) => {
      if (a !== 'security.insecure' && a !== 'network.host') throw new UsageError(`invalid --allow "${a}": security.insecure or network.host`);
      return a;
    }),
    noCache: flags.cache === false,
    jobs: flags.jobs,
    noCacheFilter: flags.cacheFilter,
    platform: flags.platform,
    pull: flags.pull,
    registry: registryOptions(flags),
    cacheTo,
    cacheFrom,
    output: spec,
    push: flags.push,
    onError: parseOnError(flags.onError),
    signal: io.signal,
  };
  if (request.platform) parsePlatform(request.platform); // a bad platform fails before the progress starts
  const progress = makeProgress(flags.quiet ? 'quiet' : (flags.progress as ProgressMode), () => process.stderr);
  if (cacheTo.some((c) => c.type === 'inline') && !pushes) progress.warning('--cache-to type=inline is kept in the image config: it reaches other machines only through a push (--push or -o type=registry)');
  const result = await buildInStore(store, request, progress);
  if (flags.iidfile) writeFileSync(flags.iidfile, result.imageId);
  if (flags.quiet) io.out(result.imageId);
}

// What a build is asked to do (the library's build() options) and what it returns.
import type { Platform } from '../image/platform.js';
import type { Progress } from '../progress/progress.js';
import type { RegistryOptions } from '../registry/hosts.js';
import type { ResourceLimits } from '../sandbox/cgroups.js';
import type { CacheExportSpec, CacheImportSpec } from '../remote-cache/spec.js';
import type { Store } from '../store/store.js';

export interface BuildOptions {
  store: Store;
  /** The build context directory. */
  contextDir: string;
  /** The Dockerfile; default <context>/Dockerfile. */
  dockerfile?: string;
  /** Names to tag the result with (normalised as Docker does). */
  tags?: string[];
  /** --no-cache: run every step; --no-cache-filter: run every step of these stages. */
  noCache?: boolean;
  noCacheFilter?: string[];
  /** --jobs: stages built at once (default: the number of CPUs). */
  jobs?: number;
  /** --target: the stage to build (default: the last). */
  target?: string;
  /** --build-arg values; `undefined` means "take it from the environment". */
  buildArgs?: Record<string, string | undefined>;
  /** --memory, --memory-swap, --cpu-*, --cpuset-cpus, --pids-limit: every RUN step's cgroup. */
  limits?: ResourceLimits;
  /** --ulimit NAME=SOFT[:HARD], as `NAME:SOFT:HARD` (-1 unlimited). */
  ulimits?: string[];
  /** --network: RUN steps' network when they name none (default: a namespace of their own, its connections made through slirp). */
  network?: 'default' | 'none' | 'host';
  /** --shm-size: /dev/shm's size in bytes. */
  shmSize?: number;
  /** --runtime runc|crun|PATH: RUN steps through that OCI runtime instead of the built-in sandbox. */
  runtime?: string;
  /** --allow: entitlements (security.insecure lets RUN --security=insecure run). */
  allow?: string[];
  /** --ssh: agent sockets or key files by id, for RUN --mount=type=ssh. */
  ssh?: Record<string, string[]>;
  /** --secret values by id: a file or an environment variable of tsbuild's. */
  secrets?: Record<string, { src?: string; env?: string }>;
  /** --platform: the platform to build for (FROM picks it from multi-platform images; TARGET* ARGs follow). */
  platform?: Platform;
  /** --pull: check every FROM image's tag against its registry, and pull it when it changed. */
  pull?: boolean;
  /** Registry settings: mirrors, insecure registries, certs.d. */
  registry?: RegistryOptions;
  /** --cache-from: build cache other machines exported (a registry ref, a local directory). */
  cacheFrom?: CacheImportSpec[];
  /** --cache-to: where to export this build's cache (a registry ref, a local directory, inline). */
  cacheTo?: CacheExportSpec[];
  /** --on-error=shell: when a RUN fails, a shell in its filesystem as it failed (with a terminal), then the error. */
  onError?: 'fail' | 'shell';
  /** Where step headers, timings, RUN output and warnings go (default: nowhere). */
  progress?: Progress;
  signal?: AbortSignal;
}

export interface BuildResult {
  imageId: string;
  /** The digest of the image's manifest, as the store keeps it (and `tsbuild save` writes it). */
  manifestDigest: string;
  tags: string[];
}

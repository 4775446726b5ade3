// --runtime runc|crun|PATH: a RUN step through an OCI runtime, with a config as strict as the built-in sandbox's.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inUserNamespace } from '../util/user-namespace.js';
import { UsageError } from '../errors.js';
import { SANDBOX_HOSTNAME } from './etc-files.js';
import { takeStepNetwork, type StepNetwork } from './network-pool.js';
import type { SandboxResult, SandboxSpec } from './run.js';

/** Docker's default capabilities, as the built-in sandbox keeps them. */
const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** What the built-in sandbox's seccomp filter denies (native/sandbox.c), as an OCI profile. */
function seccomp(): unknown {
  const denied = [
    'keyctl', 'add_key', 'request_key', 'unshare', 'setns', 'bpf', 'perf_event_open', 'userfaultfd', 'kexec_load',
    'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'open_by_handle_at', 'name_to_handle_at',
    'mount', 'umount2', 'pivot_root', 'swapon', 'swapoff', 'acct', 'quotactl',
  ];
  // clone with a namespace flag (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET); clone3 reported missing
  const nsFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: denied, action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ...nsFlags.map((f) => ({ names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: f, valueTwo: f, op: 'SCMP_CMP_MASKED_EQ' }] })),
    ],
  };
}

function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args[0]}: ${err.trim() || `exit ${code}`}`))));
  });
}

/** The runtime's binary: `runc`, `crun`, or a path. */
export function runtimePath(runtime: string): string {
  // the step's rootfs is mounted in tsbuild's own mount namespace for the runtime, which takes root
  if (inUserNamespace()) throw new UsageError(`--runtime ${runtime} needs root: a rootless build runs its steps in the built-in sandbox (leave --runtime out)`);
  if (runtime.includes('/')) {
    if (!existsSync(runtime)) throw new UsageError(`--runtime ${runtime}: no such file`);
    return path.resolve(runtime);
  }
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, runtime);
    if (existsSync(p)) return p;
  }
  for (const p of [`/usr/sbin/${runtime}`, `/usr/bin/${runtime}`, `/usr/local/sbin/${runtime}`, `/usr/local/bin/${runtime}`]) if (existsSync(p)) return p;
  throw new UsageError(`--runtime ${runtime}: not found (install it, or give its path)`);
}

/** The step's OCI config: namespaces, mounts, capabilities, seccomp, masked paths as the built-in sandbox sets them. */
function ociConfig(spec: SandboxSpec, rootfs: string, netns: string | undefined): unknown {
  const caps = spec.insecure ? undefined : DEFAULT_CAPS;
  const mounts: unknown[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${spec.shmSize ?? 65536 * 1024}`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', spec.insecure ? 'rw' : 'ro'] },
    ...Object.entries(spec.binds).map(([inside, host]) => ({ destination: `/${inside}`, type: 'bind', source: host, options: ['rbind', 'rprivate'] })),
    ...(spec.mounts ?? []).map((m) => {
      if (m.type === 'tmpfs') return { destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.source ? [`size=${m.source}`] : [])] };
      if (m.type === 'overlay') {
        const abs = m.source.replace(/lowerdir=([^,]*)/, (_, l: string) => `lowerdir=${l.split(':').map((d) => path.resolve(spec.rootfs.base, d)).join(':')}`);
        return { destination: m.target, type: 'overlay', source: 'overlay', options: [...abs.split(','), 'ro'] };
      }
      return { destination: m.target, type: 'bind', source: m.source, options: ['rbind', 'rprivate', m.readOnly ? 'ro' : 'rw'] };
    }),
  ];
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (spec.network !== 'host') namespaces.push({ type: 'network', ...(netns ? { path: netns } : {}) } as { type: string });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: spec.user.groups },
      args: spec.argv,
      env: spec.env,
      cwd: spec.cwd,
      ...(caps ? { capabilities: { bounding: caps, effective: spec.user.uid === 0 ? caps : [], permitted: spec.user.uid === 0 ? caps : [] } } : {}),
      rlimits: (spec.rlimits ?? []).map((r) => {
        const [name, soft, hard] = r.split(':');
        const v = (n: string) => (Number(n) < 0 ? 2 ** 64 - 1 : Number(n));
        return { type: `RLIMIT_${name!.toUpperCase()}`, soft: v(soft!), hard: v(hard!) };
      }),
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: SANDBOX_HOSTNAME,
    mounts,
    linux: {
      namespaces,
      ...(spec.insecure
        ? {}
        : {
            seccomp: seccomp(),
            maskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
            readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
          }),
      // the step's cgroup (made with its limits by cgroups.ts): the runtime joins it
      ...(spec.cgroups?.length ? { cgroupsPath: `/tsbuild/${path.basename(spec.cgroups[0]!)}` } : {}),
    },
  };
}

/**
 * Runs one RUN command through an OCI runtime: the step's overlay is mounted as the bundle's
 * rootfs (and unmounted after), the config carries the same namespaces, capabilities, seccomp
 * denials, masked paths and mounts as the built-in sandbox, and the runtime's exit status is the
 * command's.
 */
export async function runInRuntime(runtime: string, spec: SandboxSpec): Promise<SandboxResult> {
  const { upper, work } = spec.rootfs;
  const bundle = path.join(spec.stepDir, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  for (const d of [upper, work, rootfs]) mkdirSync(d, { recursive: true, mode: 0o755 });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', spec.rootfs.options, rootfs], spec.rootfs.base);
  let net: StepNetwork | undefined;
  try {
    // inside the try: a network that cannot be made leaves no overlay mounted
    net = spec.network === 'sandbox' ? takeStepNetwork() : undefined;
    writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(ociConfig(spec, rootfs, net?.path)));
    const id = `tsbuild-${path.basename(spec.stepDir)}-${process.pid}-${Date.now().toString(36)}`;
    const { execa } = await import('execa');
    const child = execa(runtimePath(runtime), ['run', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
      buffer: false,
      reject: false,
      cancelSignal: spec.signal,
      forceKillAfterDelay: 2000,
    });
    child.stdout?.pipe(spec.output, { end: false });
    child.stderr?.pipe(spec.output, { end: false });
    const result = await child;
    return { exitCode: result.exitCode ?? 128 + 9, upper };
  } finally {
    net?.stop();
    await run('umount', ['-l', rootfs]).catch(() => undefined);
  }
}

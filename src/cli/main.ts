// The command line: commander's flags, each command loaded when it runs, errors as one line.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { InterruptedError, TsbuildError } from '../errors.js';
import { defaultRoot, Store } from '../store/store.js';
import type { Io } from './io.js';

const collect = (value: string, previous: string[]) => [...previous, value];

/** dockerd's registry settings, as flags of each command that talks to registries. */
function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--registry-mirror <url>', 'a Docker Hub mirror, tried first (dockerd\'s registry-mirrors); repeatable', collect, [])
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP or unverified TLS for this registry (dockerd\'s insecure-registries); repeatable', collect, []);
}

/**
 * The tsbuild command line. It only parses flags and calls library functions; every error the user
 * can cause ends as one line on stderr and a non-zero exit code. Each command's code loads when that
 * command runs (the bundle keeps dynamically imported modules uninitialised until then): `images`
 * never evaluates the builder, tar or the Dockerfile parser.
 */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let stores: Store[] = [];
  let firstSignal = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // a signal sent to the whole process group reaches a rootless command twice within moments
    // (directly, and passed on by bin/tsbuild.cjs, which waits for it outside the namespace)
    if (controller.signal.aborted && Date.now() - firstSignal < 250) return;
    if (controller.signal.aborted) {
      // a second signal: stop now; what this left, the next command that writes removes
      process.stderr.write(`tsbuild: ${signal} again: stopping without cleaning up\n`);
      process.exit(128 + (os.constants.signals[signal] ?? 2));
    }
    firstSignal = Date.now();
    controller.abort(new InterruptedError(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => stores.forEach((s) => s.cleanup()));
  const io: Io = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`), signal: controller.signal };

  const program = new Command('tsbuild').description('Builds Dockerfiles into OCI/Docker images without a daemon');
  // read-only commands leave what dead commands left to the next command that writes
  const openStore = (readOnly = false) => {
    const s = Store.open(program.opts<{ root?: string }>().root ?? defaultRoot(), { sweep: !readOnly, warn: io.err });
    stores.push(s);
    return s;
  };

  // Each command is defined (its flags made) only when it is the one that runs, or for help:
  // commander making every command's flags was ~3M instructions (~1 ms) of each start. Settings a
  // command inherits from the program are made before any is.
  const commands: Record<CommandName, () => void> = {
    build: () => {
      const buildCmd = program
        .command('build', { isDefault: true })
        .description('build an image from a Dockerfile')
        .argument('<context>', 'build context directory')
        .option('-t, --tag <name>', 'name and optionally a tag (name:tag); repeatable', collect, [])
        .option('-f, --file <Dockerfile>', 'the Dockerfile (default: <context>/Dockerfile)')
        .option('-o, --output <file.tar|type=docker|oci,dest=FILE[,compression=gzip|uncompressed]>', 'also write the image as a tarball: a plain FILE is a docker-archive + OCI layout with uncompressed layers, as docker save writes; the type= form is BuildKit\'s, with gzip layers unless compression=uncompressed')
        .option('-q, --quiet', 'print only the image ID')
        .option('--iidfile <file>', 'write the image ID to the file')
        .option('--progress <mode>', 'auto, tty, plain, quiet or rawjson', 'auto')
        .option('--build-arg <KEY[=VALUE]>', 'set a build-time variable; repeatable', collect, [])
        .option('--target <stage>', 'build this stage (default: the last)')
        .option('--no-cache', 'run every step, whatever the build cache holds')
        .option('--jobs <n>', 'stages built at once (default: the number of CPUs)', (v: string) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1) throw new TsbuildError(`invalid --jobs "${v}": expected a positive integer`);
          return n;
        })
        .option('--no-cache-filter <stage>', 'run every step of this stage; repeatable', collect, [])
        .option('--secret <id=ID,src=PATH|env=VAR>', 'a secret for RUN --mount=type=secret; repeatable', collect, [])
        .option('-m, --memory <bytes>', 'memory limit of each RUN step (e.g. 512m)')
        .option('--memory-swap <bytes>', 'memory plus swap of each RUN step (-1: unlimited swap; default twice --memory)')
        .option('--cpu-quota <us>', 'CPU CFS quota of each RUN step, in microseconds per period')
        .option('--cpu-period <us>', 'CPU CFS period, in microseconds')
        .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
        .option('--cpuset-cpus <list>', 'CPUs RUN steps may use (0-1, 0,2)')
        .option('--pids-limit <n>', 'most processes a RUN step may have at once')
        .option('--ulimit <name=soft[:hard]>', 'a ulimit of RUN steps (nofile=1024:2048); repeatable', collect, [])
        .option('--shm-size <bytes>', 'size of /dev/shm in RUN steps (default 64m)')
        .option('--network <mode>', 'network of RUN steps that name none: default (their own, outbound only), none or host')
        .option('--runtime <runc|crun|path>', 'run RUN steps through this OCI runtime (default: the built-in sandbox)')
        .option('--allow <entitlement>', 'security.insecure: let RUN --security=insecure steps run privileged; repeatable', collect, [])
        .option('--ssh <default|ID=SOCKET|ID=KEY[,KEY]>', 'an ssh agent (or keys) for RUN --mount=type=ssh; repeatable', collect, [])
        .option('--platform <os/arch[/variant]>', 'the platform to build for (default: the host\'s)')
        .option('--pull', 'check FROM images\' tags against their registries, and pull what changed')
        .option('--push', 'push the image to its registry under each -t name')
        .option('--cache-to <type=registry,ref=REF[,mode=max]|type=local,dest=DIR|type=inline>', 'export the build cache; repeatable', collect, [])
        .option('--cache-from <type=registry,ref=REF|type=local,src=DIR>', 'import build cache; repeatable', collect, [])
        .option('--on-error <fail|shell>', 'shell: when a RUN fails, open a shell in its filesystem as the command left it (needs a terminal), then fail', 'fail')
        .option('--check', 'run the build checks (BuildKit\'s and tsbuild\'s hygiene rules) without building: the same as --call=check')
        .option('--call <check|build>[,format=json][,ignorestatus=true]', 'what to do: build (the default), or check')
        .addOption(new Option('--root <dir>').hideHelp());
      withRegistryFlags(buildCmd).action(async (context: string, flags) => {
        if (flags.root) program.setOptionValue('root', flags.root);
        if (flags.check || flags.call !== undefined) {
          const { checkCommand, parseCall } = await import('./commands/check.js');
          const call = flags.check ? { ...parseCall(flags.call ?? 'check'), name: 'check' as const } : parseCall(flags.call);
          if (call.name === 'check') {
            const { parseBuildArgs } = await import('./commands/build.js');
            await checkCommand(context, { ...flags, root: program.opts<{ root?: string }>().root }, parseBuildArgs(flags.buildArg), call, io);
            return;
          }
        }
        const { buildCommand } = await import('./commands/build.js');
        await buildCommand(openStore(), context, flags, io);
      });
    },
    run: () => {
      program
        .command('run')
        .description('run a command in an image of the store, in the sandbox RUN steps run in (its changes are thrown away)')
        .argument('<image>')
        .argument('[command...]', 'the command (default: the image\'s ENTRYPOINT and CMD)')
        .option('--rm', 'remove what the command changed when it ends (always: tsbuild keeps no containers; accepted as docker run\'s)')
        .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: tsbuild\'s own value); repeatable', collect, [])
        .option('-w, --workdir <dir>', 'working directory of the command')
        .option('-u, --user <user[:group]>', 'user of the command')
        .option('--entrypoint <cmd>', 'replace the image\'s ENTRYPOINT ("" for none)')
        .option('--network <mode>', 'default (its own, outbound only), none or host')
        .passThroughOptions()
        .action(async (image: string, command: string[], flags: { env: string[]; workdir?: string; user?: string; entrypoint?: string; network?: string }) => {
          const network = flags.network === 'bridge' ? 'default' : flags.network;
          if (network !== undefined && !['default', 'none', 'host'].includes(network)) throw new TsbuildError(`invalid --network "${flags.network}": default, none or host`);
          const { runImage } = await import('../builder/run-image.js');
          io.exitCode = await runImage(openStore(), image, { ...flags, command, network: network as 'default' | 'none' | 'host' | undefined });
        });
    },
    pull: () => {
      withRegistryFlags(program.command('pull').description('pull an image from a registry').argument('<name>'))
        .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image')
        .option('-q, --quiet', 'print only the name')
        .action(async (name: string, flags) => (await import('./commands/registry.js')).pullCommand(openStore(), name, flags, io));
    },
    push: () => {
      withRegistryFlags(program.command('push').description('push an image to a registry').argument('<name>', 'the image').argument('[ref]', 'push it under this name instead'))
        .option('--compression <gzip|zstd|uncompressed>', 'compression of layers the registry lacks', 'gzip')
        .option('--oci-mediatypes', 'OCI media types instead of Docker\'s')
        .option('-q, --quiet', 'print only the digest')
        .action(async (name: string, ref: string | undefined, flags) => (await import('./commands/registry.js')).pushCommand(openStore(), name, ref, flags, io));
    },
    tag: () => {
      program
        .command('tag')
        .description('give an image another name')
        .argument('<source>')
        .argument('<target>')
        .action(async (source: string, target: string) => (await import('./commands/registry.js')).tagCommand(openStore(), source, target));
    },
    login: () => {
      withRegistryFlags(program.command('login').description('log in to a registry (docker login\'s config file)').argument('[server]'))
        .option('-u, --username <user>')
        .option('-p, --password <password>')
        .option('--password-stdin', 'read the password from standard input')
        .action(async (server: string | undefined, flags) => (await import('./commands/registry.js')).loginCommand(server, flags, io));
    },
    logout: () => {
      program
        .command('logout')
        .description('remove a registry\'s credentials')
        .argument('[server]')
        .action(async (server: string | undefined) => (await import('./commands/registry.js')).logoutCommand(server, io));
    },
    load: () => {
      program
        .command('load')
        .description('load images from a docker save or OCI tarball')
        .argument('[file]', 'the tarball')
        .option('-i, --input <file>', 'the tarball')
        .option('-q, --quiet', 'print nothing')
        .action(async (file: string | undefined, flags: { input?: string; quiet?: boolean }) => {
          const input = file ?? flags.input;
          if (!input) throw new TsbuildError('tsbuild load needs a file: tsbuild load FILE.tar');
          const { loadCommand } = await import('./commands/archives.js');
          await loadCommand(openStore(), input, flags.quiet ?? false, io);
        });
    },
    import: () => {
      program
        .command('import')
        .description('create a one-layer image from a rootfs tarball')
        .argument('<file>', 'rootfs tarball (plain or gzip)')
        .argument('<name>', 'image name[:tag]')
        .action(async (file: string, name: string) => (await import('./commands/archives.js')).importCommand(openStore(), file, name, io));
    },
    images: () => {
      program
        .command('images')
        .description('list images')
        .action(async () => (await import('./commands/images.js')).imagesCommand(openStore(true), io));
    },
    history: () => {
      program
        .command('history')
        .description('show the history of an image')
        .argument('<image>')
        .option('--no-trunc', "don't truncate output")
        .option('--waste', 'per layer: files added, changed and removed, and bytes a later layer throws away; the image\'s wasted space and efficiency (as dive)')
        .option('--format <format>', 'json: the --waste report as JSON')
        .action(async (name: string, flags: { trunc: boolean; waste?: boolean; format?: string }) => {
          const commands = await import('./commands/images.js');
          if (flags.format !== undefined && (flags.format !== 'json' || !flags.waste)) throw new TsbuildError(`history: --format ${flags.format}: only --format json with --waste is supported`);
          if (flags.waste) await commands.historyWasteCommand(openStore(true), name, flags.format, !flags.trunc, io);
          else commands.historyCommand(openStore(true), name, !flags.trunc, io);
        });
    },
    inspect: () => {
      program
        .command('inspect')
        .description('show config, manifest and layers of images')
        .argument('<image...>')
        .action(async (names: string[]) => (await import('./commands/images.js')).inspectCommand(openStore(true), names, io));
    },
    save: () => {
      program
        .command('save')
        .description('save images to a docker-archive + OCI tarball')
        .argument('<image...>')
        .option('-o, --output <file>', 'write to this file')
        .action(async (names: string[], flags: { output?: string }) => (await import('./commands/archives.js')).saveCommand(openStore(), names, flags.output, io));
    },
    rmi: () => {
      program
        .command('rmi')
        .description('remove images')
        .argument('<image...>')
        .option('-f, --force', 'remove an image tagged more than once by ID')
        .action(async (names: string[], flags: { force?: boolean }) => (await import('./commands/housekeeping.js')).rmiCommand(openStore(), names, flags.force ?? false, io));
    },
    system: () => {
      const system = program.command('system').description('store-wide commands');
      system
        .command('df')
        .description('show what images, layers and the build cache use')
        .action(async () => (await import('./commands/housekeeping.js')).dfCommand(openStore(true), io));
    },
    prune: () => {
      program
        .command('prune')
        .description('remove dangling layers, stale build cache and cache mounts (--all: the whole build cache and untagged images too)')
        .option('-a, --all', 'remove all build cache and untagged images')
        .option('--filter <until=DURATION|type=TYPE>', 'only what was last used more than DURATION ago (until=24h), or only records of TYPE (exec.cachemount: RUN --mount=type=cache directories; regular: the rest)', collect, [])
        .option('--keep-storage <SIZE>', 'keep at most SIZE of build cache (e.g. 10GB)')
        .action(async (flags: { all?: boolean; filter: string[]; keepStorage?: string }) => (await import('./commands/housekeeping.js')).pruneCommand(openStore(), flags, io));
    },
    fsck: () => {
      program
        .command('fsck')
        .description('verify every blob, layer and image against its digest')
        .action(async () => (await import('./commands/housekeeping.js')).fsckCommand(openStore(), io));
    },
  };
  const invoked = invokedCommand(argv);
  if (!invoked) program.version(packageVersion(), '-v, --version');
  program
    .option('--root <dir>', 'store directory (default: $TSBUILD_ROOT, else /var/lib/tsbuild for root, ~/.local/share/tsbuild for others)')
    .exitOverride()
    .enablePositionalOptions()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  if (invoked) commands[invoked]();
  else for (const name of COMMANDS) commands[name]();

  try {
    await program.parseAsync(argv, { from: 'user' });
    return io.exitCode ?? 0;
  } catch (err) {
    return report(err, controller.signal);
  } finally {
    stores.forEach((s) => s.cleanup());
    stores = [];
  }
}

/** tsbuild's commands, in the order help lists them. */
export const COMMANDS = ['build', 'run', 'pull', 'push', 'tag', 'login', 'logout', 'load', 'import', 'images', 'history', 'inspect', 'save', 'rmi', 'system', 'prune', 'fsck'] as const;
type CommandName = (typeof COMMANDS)[number];

/**
 * The command argv runs, told before commander parses it (the first word past tsbuild's own
 * --root; anything else is build's, the default command's); undefined where commander needs every
 * command: help, --version, or nothing given.
 */
export function invokedCommand(argv: readonly string[]): CommandName | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--root') i++;
    else if (!arg.startsWith('--root=')) return ['-h', '--help', '-v', '--version', 'help'].includes(arg) ? undefined : (COMMANDS as readonly string[]).includes(arg) ? (arg as CommandName) : 'build';
  }
  return undefined;
}

/** Loads every command's code without running any: `npm run build` does, so that V8's code cache holds it all. */
export async function preloadCommands(): Promise<void> {
  await Promise.all([import('./commands/build.js'), import('./commands/images.js'), import('./commands/archives.js'), import('./commands/housekeeping.js'), import('./commands/registry.js')]);
}

function report(err: unknown, signal: AbortSignal): number {
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : err.exitCode || 1;
  }
  const reason = signal.aborted ? signal.reason : err;
  if (reason instanceof TsbuildError) {
    process.stderr.write(`tsbuild: ${reason.format()}\n`);
    if (process.env.TSBUILD_DEBUG && reason.cause) process.stderr.write(`caused by: ${String((reason.cause as Error).stack ?? reason.cause)}\n`);
    return reason.exitCode;
  }
  const e = reason as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    process.stderr.write(`tsbuild: no space left on device${e.path ? ` writing ${e.path}` : ''}: free some ('tsbuild prune') or give --root on a bigger filesystem\n`);
    return 1;
  }
  process.stderr.write(`tsbuild: error: ${e?.message ?? String(reason)}\n`);
  if (process.env.TSBUILD_DEBUG) process.stderr.write(`${e?.stack}\n`);
  return 1;
}

function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // the bundle sits one level higher than the compiled modules
    }
  }
  return 'unknown';
}

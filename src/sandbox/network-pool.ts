// RUN steps' default network: namespaces made ahead of the steps that take them, each connected by a slirp4netns of its own.
import type * as ChildProcesses from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import { sandboxHelperPath } from '../native/index.js';

/** One step's network namespace, connected; `stop` ends it (the namespace goes with its holder). */
export interface StepNetwork {
  /** The namespace, for setns (the sandbox helper's --netns, an OCI runtime's namespace path). */
  path: string;
  stop(): void;
}

/** What to do about the way slirp4netns failed, when there is something to do. */
function networkHint(why: string): string {
  if (/\/dev\/net\/tun.*(Permission denied|Operation not permitted)/.test(why)) {
    return ' (an ordinary user needs /dev/net/tun readable and writable: as root, chmod 0666 /dev/net/tun, as udev does on most distributions; or build with --network=none)';
  }
  if (/\/dev\/net\/tun.*No such file/.test(why)) {
    return " (a container without /dev/net/tun, such as a Kubernetes pod: build with --network=host, which is the container's own network, or --network=none)";
  }
  return '';
}

function once(stream: Readable, what: () => string, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('data', () => resolve());
    child.once('exit', () => reject(new Error(what())));
    child.once('error', (err) => reject(err));
  });
}

/**
 * Makes a network namespace and connects it: the sandbox helper holds it (`--hold-net`: loopback
 * up, one byte when ready, gone when its stdin closes or tsbuild dies), and slirp4netns gives it
 * tap0 (10.0.2.100/24, DNS at 10.0.2.3) with the host's loopback out of reach.
 */
async function prepare(): Promise<StepNetwork> {
  // required here, not at start-up: a cached build runs nothing (and a bundle cannot import())
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof ChildProcesses;
  const holder = spawn(sandboxHelperPath(), ['--hold-net'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let holderWhy = '';
  holder.stderr?.on('data', (d: Buffer) => (holderWhy += d.toString()));
  let slirp: ChildProcess | undefined;
  const stop = () => {
    slirp?.kill('SIGKILL');
    (holder.stdin as Writable).destroy();
    holder.kill('SIGKILL');
  };
  try {
    await once(holder.stdout!, () => `cannot make the step's network namespace: ${holderWhy.trim()}`, holder);
    // --exit-fd: the pipe closes when tsbuild dies, however it dies, and slirp4netns with it
    slirp = spawn('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', '--exit-fd=4', String(holder.pid), 'tap0'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    let why = '';
    slirp.stderr?.on('data', (d: Buffer) => (why += d.toString()));
    await once(slirp.stdio[3] as Readable, () => `slirp4netns could not connect the step's network: ${why.trim().replace(/\s*\n\s*/g, '; ')}${networkHint(why)}`, slirp);
  } catch (err) {
    stop();
    throw err;
  }
  return { path: `/proc/${holder.pid}/ns/net`, stop };
}

/**
 * Namespaces are made one step ahead, as BuildKit keeps a pool of CNI namespaces: a step takes the
 * one made while the step before it ran, and the next starts being made at once. Each step gets a
 * namespace no other step had, so none sees another's connections.
 */
class NetworkPool {
  private spare: Promise<StepNetwork> | undefined;

  take(): Promise<StepNetwork> {
    const network = this.spare ?? prepare();
    this.spare = prepare();
    this.spare.catch(() => undefined); // its failure is told when a step takes it
    return network;
  }

  /** Ends the namespace made ahead, if any (at the end of a build). */
  close(): void {
    const spare = this.spare;
    this.spare = undefined;
    spare?.then((n) => n.stop(), () => undefined);
  }
}

let pool: NetworkPool | undefined;

/** A connected network namespace for one RUN step, from the pool. */
export function takeStepNetwork(): Promise<StepNetwork> {
  pool ??= new NetworkPool();
  return pool.take();
}

/** Ends what the pool holds for steps to come: a build calls it when it ends. */
export function closeStepNetworks(): void {
  pool?.close();
}

// RUN steps' default network: namespaces made ahead of the steps that take them, each connected by a slirp4netns of its own.
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { closeSync } from 'node:fs';
import { native } from '../native/index.js';
import { spawnProcess, type Spawned } from './spawn.js';

/** One step's network namespace, connected; `stop` ends it (slirp4netns, and the descriptor that holds the namespace). */
export interface StepNetwork {
  /** The namespace, for setns (the sandbox helper's --netns, an OCI runtime's namespace path): /proc/<tsbuild's pid>/fd/<n>. */
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

/** Resolves at the first byte on `stream`; rejects with `what()` if the process ends first (once its stderr is read). */
function once(stream: Readable, what: () => string, child: Spawned, stderr: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    let ready = false;
    stream.once('data', () => {
      ready = true;
      resolve();
    });
    void child.exited.then(async () => {
      if (ready) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([finished(stderr).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 200)))]);
      clearTimeout(timer);
      reject(new Error(what()));
    });
  });
}

/** Whatever a process writes on a pipe, kept for its error message. */
function collect(stream: Readable | undefined): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => (text += d.toString()));
  return () => text.trim();
}

/**
 * Makes a network namespace (loopback up, held by a descriptor of tsbuild's: no process holds it)
 * and connects it: slirp4netns gives it tap0 (10.0.2.100/24, DNS at 10.0.2.3) with the host's
 * loopback out of reach.
 */
async function prepare(): Promise<StepNetwork> {
  const fd = native().makeNetns();
  const netns = `/proc/${process.pid}/fd/${fd}`;
  let slirp: Spawned | undefined;
  const stop = () => {
    slirp?.kill('SIGKILL');
    for (const s of slirp?.stdio ?? []) s?.destroy();
    closeSync(fd);
  };
  try {
    // --exit-fd: the pipe closes when tsbuild dies, however it dies, and slirp4netns with it
    slirp = await spawnProcess('slirp4netns', ['--configure', '--mtu=65520', '--disable-host-loopback', '--netns-type=path', '--ready-fd=3', '--exit-fd=4', netns, 'tap0'], {
      env: process.env,
      stdio: ['ignore', 'ignore', 'from-child', 'from-child', 'to-child'],
    });
    const why = collect(slirp.stdio[2]);
    await once(slirp.stdio[3]!, () => `slirp4netns could not connect the step's network: ${why().replace(/\s*\n\s*/g, '; ')}${networkHint(why())}`, slirp, slirp.stdio[2]!);
  } catch (err) {
    stop();
    throw err;
  }
  return { path: netns, stop };
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
    // started once the taking step's own process is: its spawns must not go before that one
    this.spare = new Promise((resolve) => setImmediate(() => resolve(prepare())));
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

// RUN steps' default network: namespaces made ahead of the steps that take them, each served by a
// libslirp instance of its own on the addon's network thread (native/network.c).
import { closeSync } from 'node:fs';
import { native } from '../native/index.js';

/** One step's network namespace, connected; `stop` ends it (its slirp instance, and the descriptor that holds the namespace). */
export interface StepNetwork {
  /** The namespace, for setns (the sandbox helper's --netns, an OCI runtime's namespace path): /proc/<tsbuild's pid>/fd/<n>. */
  path: string;
  stop(): void;
}

let slirpMissing: string | undefined;

/** Why the default network cannot be had here (libslirp cannot be loaded), or undefined when it can. */
export function stepNetworkUnavailable(): string | undefined {
  slirpMissing ??= native().loadSlirp();
  return slirpMissing || undefined;
}

/** What to do about the way the step's network failed, when there is something to do. */
function networkHint(why: string): string {
  if (/\/dev\/net\/tun.*(Permission denied|Operation not permitted)/.test(why)) {
    return ' (an ordinary user needs /dev/net/tun readable and writable: as root, chmod 0666 /dev/net/tun, as udev does on most distributions; or build with --network=none)';
  }
  if (/\/dev\/net\/tun.*No such file/.test(why)) {
    return " (a container without /dev/net/tun, such as a Kubernetes pod: build with --network=host, which is the container's own network, or --network=none)";
  }
  return '';
}

/**
 * A new network namespace (loopback up, held by a descriptor of tsbuild's: no process holds it)
 * with tap0 at 10.0.2.100/24, served by slirp: outbound connections, DNS at 10.0.2.3, the host's
 * loopback out of reach.
 */
function prepare(): StepNetwork {
  let made: [number, number];
  try {
    made = native().makeStepNetwork();
  } catch (err) {
    const why = (err as Error).message.trim();
    throw new Error(`could not connect the step's network: ${why}${networkHint(why)}`, { cause: err });
  }
  const [fd, id] = made;
  return {
    path: `/proc/${process.pid}/fd/${fd}`,
    stop() {
      native().stopStepNetwork(id);
      closeSync(fd);
    },
  };
}

/**
 * Namespaces are made one step ahead, as BuildKit keeps a pool of CNI namespaces: a step takes the
 * one made while the step before it ran, and the next is made once the taking step has started
 * its process. Each step gets a namespace and a slirp no other step had, so none sees another's
 * connections.
 */
class NetworkPool {
  private spare: StepNetwork | undefined;
  private making: NodeJS.Immediate | undefined;

  take(): StepNetwork {
    const spare = this.spare ?? prepare();
    this.spare = undefined;
    // made once the taking step's own spawn is under way: it must not go before that one
    this.making ??= setImmediate(() => {
      this.making = undefined;
      try {
        this.spare ??= prepare();
      } catch {
        // none ahead: the next step makes its own, and tells why it cannot
      }
    });
    return spare;
  }

  /** Ends the namespace made ahead, if any (at the end of a build). */
  close(): void {
    clearImmediate(this.making);
    this.making = undefined;
    this.spare?.stop();
    this.spare = undefined;
  }
}

let pool: NetworkPool | undefined;

/** A connected network namespace for one RUN step, from the pool. */
export function takeStepNetwork(): StepNetwork {
  pool ??= new NetworkPool();
  return pool.take();
}

/** Ends what the pool holds for steps to come: a build calls it when it ends. */
export function closeStepNetworks(): void {
  pool?.close();
}

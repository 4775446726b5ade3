// The /etc/hosts, /etc/hostname and /etc/resolv.conf a RUN step sees.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const SANDBOX_HOSTNAME = 'buildkitsandbox';

/**
 * The files bind-mounted over /etc/hosts, /etc/hostname and /etc/resolv.conf during RUN, as BuildKit
 * makes them: the host's resolvers with --network=host, slirp's DNS forwarder (10.0.2.3) with the
 * default sandbox network.
 */
/**
 * The sandbox network a RUN's network mode gives (`default` is a network of its own where
 * `ownNetwork`, libslirp being there, else the host's), and the etc files (writeEtcFiles') bound
 * over those the rootfs holds (`bindable`): a network of its own reaches DNS through slirp's
 * forwarder.
 */
export function sandboxNetwork(mode: string, ownNetwork: boolean, etc: Record<string, string>, bindable: readonly string[]): { network: 'none' | 'sandbox' | 'host'; binds: Record<string, string> } {
  const network = mode === 'none' ? 'none' : mode === 'default' && ownNetwork ? 'sandbox' : 'host';
  const binds: Record<string, string> = Object.fromEntries(bindable.map((f) => [f, etc[f]!]));
  if (network === 'sandbox' && binds['etc/resolv.conf']) binds['etc/resolv.conf'] = etc['sandbox/resolv.conf']!;
  return { network, binds };
}

export function writeEtcFiles(dir: string): Record<string, string> {
  const hosts = path.join(dir, 'hosts');
  const hostname = path.join(dir, 'hostname');
  const resolv = path.join(dir, 'resolv.conf');
  writeFileSync(hosts, `127.0.0.1\tlocalhost ${SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  writeFileSync(hostname, `${SANDBOX_HOSTNAME}\n`);
  writeFileSync(resolv, existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf') : 'nameserver 8.8.8.8\n');
  // the sandbox network reaches DNS through slirp's forwarder
  writeFileSync(path.join(dir, 'resolv.conf.sandbox'), 'nameserver 10.0.2.3\n');
  return { 'etc/hosts': hosts, 'etc/hostname': hostname, 'etc/resolv.conf': resolv, 'sandbox/resolv.conf': path.join(dir, 'resolv.conf.sandbox') };
}

// How to reach a registry: its API endpoint, TLS trust (system CAs, certs.d), plain HTTP, mirrors.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { UsageError } from '../errors.js';

/** What the user told tsbuild about registries (dockerd's daemon.json equivalents, as flags). */
export interface RegistryOptions {
  /** `--insecure-registry HOST[:PORT]`: plain HTTP (or unverified TLS) allowed. */
  insecureRegistries?: readonly string[];
  /** `--registry-mirror URL`: tried in order for Docker Hub images before Docker Hub itself. */
  mirrors?: readonly string[];
  /** Docker's certs.d: `<dir>/<host[:port]>/ca.crt`, `client.cert`, `client.key`. */
  certsDir?: string;
  /** Credentials to use instead of Docker's config (what `login` checks before saving them). */
  credentials?: { username: string; password: string };
}

/** One place a registry answers: the base URL of its /v2/ API, and the TLS material for it. */
export interface Endpoint {
  /** The registry domain as references name it (`docker.io`, `localhost:5000`). */
  domain: string;
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000` (no trailing slash). */
  base: string;
  /** TLS is used without verifying the server (an insecure registry over https). */
  insecure: boolean;
  /** May fall back to plain HTTP when TLS fails (localhost, 127.0.0.0/8, --insecure-registry). */
  plainHttpAllowed: boolean;
  /** A mirror: on failure, the next endpoint is tried. */
  mirror: boolean;
  tls: { ca?: string[]; cert?: string; key?: string };
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';

/** Docker's default certs.d, or TSBUILD_CERTS_D (tests, rootless setups). */
export function defaultCertsDir(): string {
  return process.env.TSBUILD_CERTS_D || '/etc/docker/certs.d';
}

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

let systemCas: string[] | undefined;

/** The system's CA bundle (Debian's, as Docker uses it), or Node's built-in list where there is none. */
function systemCertificates(): string[] {
  if (systemCas) return systemCas;
  for (const f of ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt']) {
    if (existsSync(f)) return (systemCas = [readFileSync(f, 'utf8')]);
  }
  return (systemCas = [...rootCertificates]);
}

/** The TLS material Docker would use for `host`: every *.crt in certs.d/<host>/ as extra CAs, one *.cert/*.key pair. */
function certsFor(certsDir: string, host: string): Endpoint['tls'] {
  const dir = path.join(certsDir, host);
  if (!existsSync(dir)) return { ca: systemCertificates() };
  const files = readdirSync(dir).sort();
  const ca = files.filter((f) => f.endsWith('.crt')).map((f) => readFileSync(path.join(dir, f), 'utf8'));
  const certFile = files.find((f) => f.endsWith('.cert'));
  const tls: Endpoint['tls'] = { ca: [...systemCertificates(), ...ca] };
  if (certFile) {
    const keyFile = certFile.replace(/\.cert$/, '.key');
    if (!files.includes(keyFile)) throw new UsageError(`${path.join(dir, certFile)} has no matching ${keyFile}`);
    tls.cert = readFileSync(path.join(dir, certFile), 'utf8');
    tls.key = readFileSync(path.join(dir, keyFile), 'utf8');
  }
  return tls;
}

function mirrorEndpoint(url: string, opts: RegistryOptions): Endpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid --registry-mirror "${url}": expected a URL such as https://mirror.example.com`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UsageError(`invalid --registry-mirror "${url}": the scheme must be http or https`);
  const host = parsed.host;
  return {
    domain: DOCKER_HUB,
    base: `${parsed.protocol}//${host}`,
    insecure: isInsecure(host, opts),
    plainHttpAllowed: false,
    mirror: true,
    tls: certsFor(opts.certsDir ?? defaultCertsDir(), host),
  };
}

function isInsecure(host: string, opts: RegistryOptions): boolean {
  const name = host.replace(/:\d+$/, '');
  return (opts.insecureRegistries ?? []).some((h) => h === host || h === name);
}

/**
 * Where to reach `domain`, in the order to try: Docker Hub's mirrors first, then the registry. Plain
 * HTTP only for loopback addresses and --insecure-registry hosts, as dockerd allows it.
 */
export function endpointsFor(domain: string, opts: RegistryOptions = {}): Endpoint[] {
  const certsDir = opts.certsDir ?? defaultCertsDir();
  const out: Endpoint[] = domain === DOCKER_HUB ? (opts.mirrors ?? []).map((m) => mirrorEndpoint(m, opts)) : [];
  const host = domain === DOCKER_HUB ? DOCKER_HUB_API : domain;
  const insecure = isInsecure(domain, opts);
  out.push({
    domain,
    base: `https://${host}`,
    insecure,
    plainHttpAllowed: insecure || isLoopback(domain),
    mirror: false,
    tls: certsFor(certsDir, domain === DOCKER_HUB ? DOCKER_HUB_API : domain),
  });
  return out;
}

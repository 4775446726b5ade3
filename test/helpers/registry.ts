// Test registries: CNCF Distribution on 127.0.0.1 (plain or TLS, basic or token auth), a misbehaving proxy, images pushed into them.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { ok } from './cli.js';
import { busyboxRootfsTar, tempDir } from './fixtures.js';

const REGISTRY_BIN = '/usr/bin/docker-registry';
const SERVICE = 'tsbuild-test-registry';
const ISSUER = 'tsbuild-test-token-server';
const run = promisify(execFile);

export interface RegistryOptions {
  tls?: boolean;
  /** TLS that also requires a client certificate signed by the test CA (implies tls). */
  clientAuth?: boolean;
  auth?: 'none' | 'basic' | 'token';
  /** The one account of basic and token auth (default tester / secret-pw). */
  user?: string;
  password?: string;
  /** Token auth: anonymous token requests get pull access (otherwise tokens granting nothing). */
  anonymousPull?: boolean;
  /** Token auth: the tokens' lifetime in seconds (default 300); distribution accepts a token for 60 s past its exp. */
  tokenExpiresIn?: number;
}

export interface TokenRequest {
  method: string;
  /** The query's parameters; repeated ones (scope) joined by spaces. */
  query: Record<string, string>;
  /** Whether the request carried an Authorization header. */
  authorized: boolean;
}

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  url: string;
  user?: string;
  password?: string;
  /** TLS: a directory laid out as /etc/docker/certs.d: <host>/ca.crt, client.cert, client.key. */
  certsDir?: string;
  /** TLS: the test CA's certificate. */
  caFile?: string;
  dataDir: string;
  /** Token auth: every request the token server answered, in order. */
  tokenRequests?: TokenRequest[];
  stop(): Promise<void>;
}

/** Registries still running, killed should the test process exit without stopping them. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `docker-registry serve` on a free 127.0.0.1 port with its storage in a temp dir, once /v2/ answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: run scripts/install-deps.sh`);
  const dir = tempDir('registry-');
  const pki = path.join(dir, 'pki');
  const tls = Boolean(opts.tls || opts.clientAuth);
  const auth = opts.auth ?? 'none';
  const user = auth === 'none' ? undefined : (opts.user ?? 'tester');
  const password = auth === 'none' ? undefined : (opts.password ?? 'secret-pw');
  const host = `127.0.0.1:${await freePort()}`;
  const reg: TestRegistry = { host, url: `${tls ? 'https' : 'http'}://${host}`, user, password, dataDir: path.join(dir, 'data'), stop: async () => {} };
  if (tls || auth === 'token') makePki(pki);
  if (tls) Object.assign(reg, certsDir(pki, path.join(dir, 'certs.d'), host));
  const tokens = auth === 'token' ? await startTokenServer(pki, { ...opts, user: user!, password: password! }) : undefined;
  reg.tokenRequests = tokens?.requests;
  const config = {
    version: '0.1',
    log: { level: 'info' },
    storage: { filesystem: { rootdirectory: reg.dataDir }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: host, secret: 'tsbuild-test', ...(tls && { tls: tlsConfig(pki, Boolean(opts.clientAuth)) }) },
    ...(auth === 'basic' && { auth: { htpasswd: { realm: 'tsbuild-test', path: htpasswd(dir, user!, password!) } } }),
    ...(tokens && { auth: { token: { realm: tokens.realm, service: SERVICE, issuer: ISSUER, rootcertbundle: path.join(pki, 'ca.crt') } } }),
  };
  // YAML is a superset of JSON
  writeFileSync(path.join(dir, 'config.yml'), JSON.stringify(config, null, 2));
  const child = spawnLogged(REGISTRY_BIN, ['serve', path.join(dir, 'config.yml')], path.join(dir, 'registry.log'));
  reg.stop = async () => {
    await stopProcess(child);
    await tokens?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(reg, child, path.join(dir, 'registry.log'));
  } catch (e) {
    await reg.stop();
    throw e;
  }
  return reg;
}

function spawnLogged(bin: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  return child;
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

async function stopProcess(child: ChildProcess): Promise<void> {
  running.delete(child);
  if (exited(child)) return;
  const exit = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exit;
  clearTimeout(timer);
}

async function waitReady(reg: TestRegistry, child: ChildProcess, log: string): Promise<void> {
  const tls = tlsFiles(reg);
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && !exited(child); ) {
    const status = await call(`${reg.url}/v2/`, { tls }).then((r) => r.status, () => 0);
    if (status === 200 || status === 401) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const tail = readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
  throw new Error(`docker-registry on ${reg.host} did not answer /v2/ (exit code ${child.exitCode}):\n${tail}`);
}

/** A port free on 127.0.0.1 a moment ago. */
async function freePort(): Promise<number> {
  const server = await listen(http.createServer(), '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  await closeServer(server);
  return port;
}

function listen(server: http.Server, address: string): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve(server));
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function htpasswd(dir: string, user: string, password: string): string {
  const file = path.join(dir, 'htpasswd');
  writeFileSync(file, execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }));
  return file;
}

// --- certificates ---------------------------------------------------------------------------------

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A test CA and what it signs: the registry's server certificate, a client certificate, the token signer's. */
function makePki(dir: string): void {
  mkdirSync(dir);
  openssl(dir, ['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=tsbuild test CA', '-days', '2']);
  issue(dir, 'server', ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth']);
  issue(dir, 'client', ['extendedKeyUsage=clientAuth']);
  issue(dir, 'token', ['keyUsage=critical,digitalSignature']);
}

/** name.key and name.crt, signed by the CA, with these X.509 v3 extensions. */
function issue(dir: string, name: string, extensions: string[]): void {
  openssl(dir, ['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=tsbuild test ${name}`]);
  writeFileSync(path.join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Docker's certs.d layout for one registry host: the CA and a client key pair. */
function certsDir(pki: string, dir: string, host: string): Pick<TestRegistry, 'certsDir' | 'caFile'> {
  mkdirSync(path.join(dir, host), { recursive: true });
  copyFileSync(path.join(pki, 'ca.crt'), path.join(dir, host, 'ca.crt'));
  copyFileSync(path.join(pki, 'client.crt'), path.join(dir, host, 'client.cert'));
  copyFileSync(path.join(pki, 'client.key'), path.join(dir, host, 'client.key'));
  return { certsDir: dir, caFile: path.join(pki, 'ca.crt') };
}

function tlsConfig(pki: string, clientAuth: boolean): object {
  const files = { certificate: path.join(pki, 'server.crt'), key: path.join(pki, 'server.key') };
  return clientAuth ? { ...files, clientcas: [path.join(pki, 'ca.crt')] } : files;
}

interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The CA and client key pair from a TLS registry's certs.d, for node's https. */
function tlsFiles(reg: TestRegistry): TlsFiles | undefined {
  if (!reg.certsDir) return undefined;
  const read = (name: string) => readFileSync(path.join(reg.certsDir!, reg.host, name));
  return { ca: read('ca.crt'), cert: read('client.cert'), key: read('client.key') };
}

// --- token server -----------------------------------------------------------------------------------

interface TokenServer {
  realm: string;
  requests: TokenRequest[];
  close(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/**
 * A token server after distribution's token spec: GET /token?service=&scope=, Basic auth checked,
 * ES256 JWTs whose x5c chain (the token certificate) is rooted in the test CA, the registry's rootcertbundle.
 */
async function startTokenServer(pki: string, opts: RegistryOptions & { user: string; password: string }): Promise<TokenServer> {
  const key = createPrivateKey(readFileSync(path.join(pki, 'token.key')));
  const x5c = [new X509Certificate(readFileSync(path.join(pki, 'token.crt'))).raw.toString('base64')];
  const expiresIn = opts.tokenExpiresIn ?? 300;
  const requests: TokenRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://token');
    const query = Object.fromEntries([...new Set(url.searchParams.keys())].map((k) => [k, url.searchParams.getAll(k).join(' ')]));
    requests.push({ method: req.method!, query, authorized: req.headers.authorization !== undefined });
    const who = account(req.headers.authorization, opts.user, opts.password);
    if (url.pathname !== '/token' || req.method !== 'GET') return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'GET /token only' }] });
    if (query.service !== SERVICE) return sendJson(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `unknown service ${query.service}` }] });
    if (who === null) return sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] });
    const now = Math.floor(Date.now() / 1000);
    const access = granted(requestedAccess(url.searchParams.getAll('scope')), who !== undefined, Boolean(opts.anonymousPull));
    const claims = { iss: ISSUER, sub: who ?? '', aud: SERVICE, exp: now + expiresIn, nbf: now, iat: now, jti: randomUUID(), access };
    const token = signJwt(key, x5c, claims);
    sendJson(res, 200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() });
  });
  await listen(server, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  return { realm: `http://127.0.0.1:${port}/token`, requests, close: () => closeServer(server) };
}

/** The user of valid Basic credentials, undefined for none, null for wrong ones. */
function account(authorization: string | undefined, user: string, password: string): string | undefined | null {
  if (authorization === undefined) return undefined;
  const [scheme, encoded = ''] = authorization.split(' ');
  return scheme?.toLowerCase() === 'basic' && Buffer.from(encoded, 'base64').toString() === `${user}:${password}` ? user : null;
}

/** `repository:foo/bar:pull,push` scopes (each parameter may hold several, space-separated). */
function requestedAccess(scopes: string[]): Access[] {
  return scopes
    .flatMap((s) => s.split(' '))
    .filter(Boolean)
    .map((s) => {
      const [first, last] = [s.indexOf(':'), s.lastIndexOf(':')];
      return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',') };
    });
}

/** The account gets all it asks for; anonymous requests pull at most. */
function granted(access: Access[], authenticated: boolean, anonymousPull: boolean): Access[] {
  if (authenticated) return access;
  if (!anonymousPull) return [];
  return access.filter((a) => a.type === 'repository' && a.actions.includes('pull')).map((a) => ({ ...a, actions: ['pull'] }));
}

function signJwt(key: KeyObject, x5c: string[], claims: object): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signed = `${part({ typ: 'JWT', alg: 'ES256', x5c })}.${part(claims)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

// --- HTTP ----------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP(S) request, without connection reuse, its reply body read whole. */
function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer; tls?: TlsFiles } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.request : http.request;
    const req = get(url, { method: init.method ?? 'GET', headers: init.headers, agent: false, ...init.tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

type Api = (method: string, pathOrUrl: string, init?: { body?: Buffer; headers?: Record<string, string> }) => Promise<Reply>;

/** Calls to one repository of a registry with pull and push rights (Basic credentials, or a token fetched with them). */
async function repositoryApi(reg: TestRegistry, repo: string): Promise<Api> {
  const tls = tlsFiles(reg);
  const authorization = await authorize(reg, `repository:${repo}:pull,push`, tls);
  return async (method, pathOrUrl, init = {}) => {
    const r = await call(new URL(pathOrUrl, reg.url).href, { method, tls, body: init.body, headers: { ...init.headers, ...(authorization && { authorization }) } });
    if (r.status >= 300) throw new Error(`${method} ${pathOrUrl}: ${r.status} ${r.body.toString()}`);
    return r;
  };
}

async function authorize(reg: TestRegistry, scope: string, tls: TlsFiles | undefined): Promise<string | undefined> {
  const basic = reg.user ? `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}` : undefined;
  const challenge = (await call(`${reg.url}/v2/`, { tls })).headers['www-authenticate'] ?? '';
  if (!challenge.startsWith('Bearer ')) return basic;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const url = `${params.realm}?${new URLSearchParams({ service: params.service!, scope })}`;
  const r = await call(url, { headers: basic ? { authorization: basic } : {} });
  return `Bearer ${JSON.parse(r.body.toString()).token}`;
}

// --- proxy -----------------------------------------------------------------------------------------------

export interface ProxyBehaviour {
  /** Cut the first full (Range-less) GET of each blob after this many bytes; later GETs, Range ones too, pass. */
  dropBlobAfterBytes?: number;
  /**
   * Answer blob GETs with a 307 to a second server on 127.0.0.2, which serves the bytes (fetched from the
   * target with the original request's Authorization) and records whether it was sent Authorization.
   */
  redirectBlobsTo?: 'self-alt-host';
  /** Flip a byte in the middle of this blob's body. */
  tamperBlob?: string;
  /** Insert a space after manifests' opening brace: still JSON, another digest, the registry's Docker-Content-Digest kept. */
  tamperManifest?: boolean;
  /** Answer requests whose path (with query) matches with these status codes in turn, then pass them through. */
  status?: { path: RegExp; codes: number[] };
}

export interface ProxyRequest {
  method: string;
  /** The path with its query. */
  path: string;
  headers: IncomingHttpHeaders;
}

export interface TestProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  /** Every request the proxy got, in order. */
  requests: ProxyRequest[];
  /** Every request the redirect target got. */
  redirected: Array<{ path: string; authorization?: string }>;
  stop(): Promise<void>;
}

const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;
const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

interface ProxyState {
  target: URL;
  behaviour: ProxyBehaviour;
  codes: number[];
  /** Blobs whose first full GET was cut. */
  cut: Set<string>;
  /** The Authorization of redirected requests, by the grant in their redirect URL. */
  grants: Map<string, string | undefined>;
  alt?: string;
}

/** A plain-HTTP proxy in front of a plain-HTTP registry, streaming, misbehaving as told. */
export async function startProxy(target: string, behaviour: ProxyBehaviour = {}): Promise<TestProxy> {
  const state: ProxyState = { target: new URL(target), behaviour, codes: [...(behaviour.status?.codes ?? [])], cut: new Set(), grants: new Map() };
  const proxy: Omit<TestProxy, 'url' | 'host' | 'stop'> = { requests: [], redirected: [] };
  const servers: http.Server[] = [];
  if (behaviour.redirectBlobsTo) {
    const alt = await listen(http.createServer((req, res) => serveRedirected(state, proxy.redirected, req, res)), '127.0.0.2');
    servers.push(alt);
    state.alt = `http://127.0.0.2:${(alt.address() as AddressInfo).port}`;
  }
  const main = await listen(
    http.createServer((req, res) => {
      proxy.requests.push({ method: req.method!, path: req.url!, headers: req.headers });
      serveProxied(state, req, res);
    }),
    '127.0.0.1',
  );
  servers.push(main);
  const host = `127.0.0.1:${(main.address() as AddressInfo).port}`;
  return { ...proxy, url: `http://${host}`, host, stop: async () => void (await Promise.all(servers.map(closeServer))) };
}

function serveProxied(state: ProxyState, req: IncomingMessage, res: ServerResponse): void {
  const { pathname } = new URL(req.url!, 'http://proxy');
  const injected = state.behaviour.status?.path.test(req.url!) ? state.codes.shift() : undefined;
  if (injected !== undefined) {
    req.resume();
    const code = injected === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
    return sendJson(res, injected, { errors: [{ code, message: `status ${injected} injected by the test proxy` }] });
  }
  if (state.alt && req.method === 'GET' && BLOB_PATH.test(pathname)) {
    const grant = randomUUID();
    state.grants.set(grant, req.headers.authorization);
    req.resume();
    res.writeHead(307, { location: `${state.alt}${pathname}?grant=${grant}` }).end();
    return;
  }
  // the Host header passes unchanged, so the registry's Location URLs point at the proxy
  forward(state.target, req.method!, req.url!, req.headers, req).then(
    (up) => relay(state, req, up, res),
    (e: Error) => sendJson(res, 502, { errors: [{ code: 'UNKNOWN', message: e.message }] }),
  );
}

function serveRedirected(state: ProxyState, redirected: TestProxy['redirected'], req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://alt');
  redirected.push({ path: url.pathname, ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }) });
  const authorization = state.grants.get(url.searchParams.get('grant') ?? '');
  const headers = { ...(authorization && { authorization }), ...(req.headers.range && { range: req.headers.range }) };
  forward(state.target, 'GET', url.pathname, headers).then(
    (up) => relay(state, req, up, res),
    (e: Error) => sendJson(res, 502, { errors: [{ code: 'UNKNOWN', message: e.message }] }),
  );
}

function forward(target: URL, method: string, url: string, headers: IncomingHttpHeaders, body?: Readable): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const up = http.request({ host: target.hostname, port: target.port, method, path: url, headers, agent: false }, resolve);
    up.on('error', reject);
    if (body) body.pipe(up);
    else up.end();
  });
}

/** The registry's answer passed on: streamed, cut short or tampered with as the behaviour says. */
function relay(state: ProxyState, req: IncomingMessage, up: IncomingMessage, res: ServerResponse): void {
  const { pathname } = new URL(req.url!, 'http://proxy');
  const blob = BLOB_PATH.exec(pathname)?.[1];
  const { dropBlobAfterBytes, tamperBlob, tamperManifest } = state.behaviour;
  res.on('close', () => up.destroy());
  if (req.method !== 'GET' || up.statusCode !== 200) return pass(up, res);
  if (blob && blob === tamperBlob) return tamper(up, res, flipMiddleByte);
  if (tamperManifest && MANIFEST_PATH.test(pathname)) return tamper(up, res, (b) => Buffer.concat([b.subarray(0, 1), Buffer.from(' '), b.subarray(1)]));
  if (blob && dropBlobAfterBytes !== undefined && !req.headers.range && !state.cut.has(blob)) {
    state.cut.add(blob);
    return cutAfter(up, res, dropBlobAfterBytes);
  }
  pass(up, res);
}

function pass(up: IncomingMessage, res: ServerResponse): void {
  res.writeHead(up.statusCode!, up.headers);
  up.pipe(res);
}

function tamper(up: IncomingMessage, res: ServerResponse, change: (body: Buffer) => Buffer): void {
  const chunks: Buffer[] = [];
  up.on('data', (c: Buffer) => chunks.push(c));
  up.on('end', () => {
    const body = change(Buffer.concat(chunks));
    const { 'transfer-encoding': _chunked, ...headers } = up.headers;
    res.writeHead(up.statusCode!, { ...headers, 'content-length': String(body.length) }).end(body);
  });
}

function flipMiddleByte(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  copy[copy.length >> 1] ^= 0xff;
  return copy;
}

/** Sends the headers and the first `limit` bytes, then destroys the connection. */
function cutAfter(up: IncomingMessage, res: ServerResponse, limit: number): void {
  res.writeHead(up.statusCode!, up.headers);
  let sent = 0;
  up.on('data', (chunk: Buffer) => {
    if (sent >= limit) return;
    const part = chunk.subarray(0, limit - sent);
    sent += part.length;
    if (sent < limit) return void res.write(part);
    up.destroy();
    res.write(part, () => res.destroy());
  });
  up.on('end', () => res.end());
}

// --- images ------------------------------------------------------------------------------------------------

export interface PushOptions {
  /** The manifest format (default: skopeo's, v2s2 for a docker-archive). */
  format?: 'v2s2' | 'oci';
  /** Layer compression (default gzip); zstd implies the oci format, none re-uploads the layers gunzipped. */
  compression?: 'gzip' | 'zstd' | 'none';
}

/** A docker-archive of the busybox test image (fixtures' busybox rootfs, imported and saved by tsbuild). */
export async function busyboxArchive(dir = tempDir('busybox-image-')): Promise<string> {
  const store = path.join(dir, 'store');
  await ok(store, ['import', busyboxRootfsTar(dir), 'busybox']);
  const archive = path.join(dir, 'busybox-image.tar');
  await ok(store, ['save', '-o', archive, 'busybox']);
  return archive;
}

/**
 * Pushes a docker-archive to reg as repo:tag with skopeo; returns the manifest digest. skopeo 1.9 pushing
 * straight to a registry would put a copy of a layer already there in another compression (zstd for gzip or
 * back) in the manifest, so it compresses into a dir first and pushes that with --preserve-digests.
 */
export async function pushTestImage(reg: TestRegistry, archive: string, ref: string, opts: PushOptions = {}): Promise<string> {
  if (opts.compression === 'zstd' && opts.format === 'v2s2') throw new Error('zstd layers need the oci format');
  const work = tempDir('push-');
  const image = `dir:${path.join(work, 'image')}`;
  const format = opts.compression === 'zstd' ? 'oci' : opts.format;
  try {
    const compress = ['--dest-compress', ...(opts.compression === 'zstd' ? ['--dest-compress-format', 'zstd'] : [])];
    await run('skopeo', ['copy', '-q', '--insecure-policy', ...(format ? ['--format', format] : []), ...compress, `docker-archive:${archive}`, image]);
    const push = ['--preserve-digests', '--digestfile', path.join(work, 'digest'), ...destinationFlags(reg)];
    await run('skopeo', ['copy', '-q', '--insecure-policy', ...push, image, `docker://${reg.host}/${ref}`]);
    return opts.compression === 'none' ? await decompressLayers(reg, ref) : readFileSync(path.join(work, 'digest'), 'utf8').trim();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** skopeo's flags to reach reg as a destination. */
function destinationFlags(reg: TestRegistry): string[] {
  const tls = reg.certsDir ? ['--dest-cert-dir', path.join(reg.certsDir, reg.host)] : ['--dest-tls-verify=false'];
  return [...tls, ...(reg.user ? ['--dest-creds', `${reg.user}:${reg.password}`] : [])];
}

const UNCOMPRESSED: Record<string, string> = {
  'application/vnd.oci.image.manifest.v1+json': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.distribution.manifest.v2+json': 'application/vnd.docker.image.rootfs.diff.tar',
};

/** Re-uploads a pushed image's gzip layers uncompressed (skopeo compresses whatever it pushes to a registry). */
async function decompressLayers(reg: TestRegistry, ref: string): Promise<string> {
  const [repo, tag] = splitRef(ref);
  const api = await repositoryApi(reg, repo);
  const manifest = await getManifest(api, repo, tag);
  for (const layer of manifest.layers) {
    const tar = gunzipSync((await api('GET', `/v2/${repo}/blobs/${layer.digest}`)).body);
    Object.assign(layer, { mediaType: UNCOMPRESSED[manifest.mediaType], digest: await uploadBlob(api, repo, tar), size: tar.length });
  }
  return (await putManifest(api, repo, manifest, tag)).digest;
}

export interface PlatformImage {
  archive: string;
  /** os/architecture[/variant], e.g. linux/arm64 */
  platform: string;
}

/**
 * Pushes one image per platform, each with its config's os, architecture and variant set to the platform's,
 * and tags an index of them (an OCI index for OCI manifests, else a Docker manifest list) as repo:tag.
 * Returns the index's digest.
 */
export async function makeMultiPlatformIndex(reg: TestRegistry, repoTag: string, images: PlatformImage[], opts: PushOptions = {}): Promise<string> {
  const [repo, tag] = splitRef(repoTag);
  const api = await repositoryApi(reg, repo);
  const entries: Descriptor[] = [];
  for (const image of images) {
    await pushTestImage(reg, image.archive, repoTag, opts);
    const manifest = await getManifest(api, repo, tag);
    const [os, architecture, variant] = image.platform.split('/') as [string, string, string?];
    const platform = { os, architecture, ...(variant && { variant }) };
    const config = { ...JSON.parse((await api('GET', `/v2/${repo}/blobs/${manifest.config.digest}`)).body.toString()), os, architecture, variant };
    const configBytes = Buffer.from(JSON.stringify(config));
    manifest.config = { ...manifest.config, digest: await uploadBlob(api, repo, configBytes), size: configBytes.length };
    entries.push({ mediaType: manifest.mediaType, ...(await putManifest(api, repo, manifest)), platform });
  }
  const mediaType = entries[0]!.mediaType === OCI_MANIFEST ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.docker.distribution.manifest.list.v2+json';
  return (await putManifest(api, repo, { schemaVersion: 2, mediaType, manifests: entries }, tag)).digest;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MANIFEST_TYPES = [OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'];

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: object;
}

interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

interface Index {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

function splitRef(ref: string): [string, string] {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function getManifest(api: Api, repo: string, reference: string): Promise<Manifest> {
  return JSON.parse((await api('GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: MANIFEST_TYPES.join(', ') } })).body.toString());
}

/** PUTs a manifest (JSON-serialized) under a tag, or else its digest; returns its digest and size. */
async function putManifest(api: Api, repo: string, manifest: Manifest | Index, tag?: string): Promise<{ digest: string; size: number }> {
  const body = Buffer.from(JSON.stringify(manifest));
  await api('PUT', `/v2/${repo}/manifests/${tag ?? sha256(body)}`, { body, headers: { 'content-type': manifest.mediaType } });
  return { digest: sha256(body), size: body.length };
}

/** A monolithic upload (POST, then PUT with the digest); returns the digest. */
async function uploadBlob(api: Api, repo: string, data: Buffer): Promise<string> {
  const location = (await api('POST', `/v2/${repo}/blobs/uploads/`)).headers.location!;
  await api('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${sha256(data)}`, { body: data, headers: { 'content-type': 'application/octet-stream' } });
  return sha256(data);
}

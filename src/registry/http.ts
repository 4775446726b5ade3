// HTTP for registries: keep-alive agents per endpoint, redirects that never carry credentials to another host, bounded retries.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { errnoCode, RegistryError } from '../errors.js';
import path from 'node:path';
import { defaultCertsDir, type Endpoint } from './hosts.js';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** Sent as is; a function makes a fresh stream for every attempt (retries, redirects). */
  body?: Buffer | (() => Readable);
  /** `Authorization` value, sent only to the registry's own host, never after a redirect elsewhere. */
  authorization?: string;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Where the response came from, after redirects. */
  url: URL;
  body: IncomingMessage;
}

const MAX_REDIRECTS = 10;
const MAX_ATTEMPTS = 5;
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_ERRNO = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH']);
const IDLE_TIMEOUT_MS = 60_000;

const agents = new Map<string, http.Agent>();

function agentFor(url: URL, endpoint: Endpoint): http.Agent {
  const sameHost = url.host === new URL(endpoint.base).host;
  const key = `${url.protocol}//${url.host}${sameHost ? `#${endpoint.insecure ? 'insecure' : 'verified'}${endpoint.tls.cert ? '+client' : ''}` : '#foreign'}`;
  let agent = agents.get(key);
  if (!agent) {
    agent =
      url.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            // the registry's own TLS material; a storage host it redirects to is checked against the system CAs alone
            ...(sameHost ? { ca: endpoint.tls.ca, cert: endpoint.tls.cert, key: endpoint.tls.key, rejectUnauthorized: !endpoint.insecure } : {}),
          })
        : new http.Agent({ keepAlive: true });
    agents.set(key, agent);
  }
  return agent;
}

function once(req: HttpRequest, endpoint: Endpoint, withAuth: boolean): Promise<HttpResponse> {
  const { url } = req;
  const headers: Record<string, string> = { 'User-Agent': 'tsbuild/0.1', ...req.headers };
  if (withAuth && req.authorization) headers.Authorization = req.authorization;
  const body = typeof req.body === 'function' ? req.body() : req.body;
  if (Buffer.isBuffer(body)) headers['Content-Length'] = String(body.length);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const r = mod.request(url, { method: req.method, headers, agent: agentFor(url, endpoint) }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    // the socket's idle timeout, until the response's last byte: a stalled download fails, and is resumed
    r.setTimeout(IDLE_TIMEOUT_MS, () => r.destroy(Object.assign(new Error('no data for 60 s'), { code: 'ETIMEDOUT' })));
    r.on('error', (err) => {
      if (body && !Buffer.isBuffer(body)) body.destroy(err); // its producer stops instead of waiting for a reader
      reject(err);
    });
    if (body === undefined) r.end();
    else if (Buffer.isBuffer(body)) r.end(body);
    else {
      body.on('error', (err) => r.destroy(err));
      body.pipe(r);
    }
  });
}

/** Reads a whole (small) body; more than `limit` bytes is an error. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (declared > limit) {
    res.body.destroy();
    throw new RegistryError(`${what} is ${declared} bytes, over the limit of ${limit}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > limit) {
      res.body.destroy();
      throw new RegistryError(`${what} is over the limit of ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Drops a response's body so that its connection can be reused. */
export async function discard(res: HttpResponse): Promise<void> {
  try {
    for await (const _ of res.body);
  } catch {
    // a broken body of a response we do not need
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function retryDelay(attempt: number, res?: HttpResponse): number {
  const after = Number(res?.headers['retry-after']);
  if (Number.isFinite(after) && after >= 0) return Math.min(after * 1000, 10_000);
  return Math.min(250 * 2 ** attempt, 4000);
}

/** Whether a failure of the network (not of the registry's answer) is worth another try. */
export function isTransient(err: unknown): boolean {
  const code = errnoCode(err);
  return (code !== undefined && RETRY_ERRNO.has(code)) || (err instanceof Error && /socket hang up|aborted|premature close/i.test(err.message));
}

const CERTIFICATE_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/** One line for a failure to reach a host: OpenSSL's multi-part messages cut to their reason, and what to do about certificates. */
function describeNetworkError(err: unknown, url: URL): string {
  const code = errnoCode(err) ?? '';
  let msg = err instanceof Error ? err.message : String(err);
  msg = /:error:[0-9A-F]+:[^:]+:[^:]+:([^:]+):/.exec(msg)?.[1] ?? msg; // "…:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:…"
  msg = msg.replace(/\s+/g, ' ').trim();
  const dir = path.join(defaultCertsDir(), url.host);
  let hint = '';
  if (/ALERT/.test(code)) hint = ` (the registry refused the client certificate: put client.cert and client.key in ${dir})`;
  else if (CERTIFICATE_ERRORS.test(code)) hint = ` (to trust a private CA, put it in ${path.join(dir, 'ca.crt')})`;
  return `cannot reach ${url.host}: ${code && !msg.includes(code) && !CERTIFICATE_ERRORS.test(code) ? `${code} ` : ''}${msg}${hint}`;
}

/**
 * Sends a request and follows redirects: `Authorization` goes only to the registry's own host, so a
 * blob redirected to a storage host (S3, a CDN) is fetched without the user's credentials. 429 and
 * 5xx answers and dropped connections are retried with backoff, a bounded number of times.
 */
export async function send(endpoint: Endpoint, req: HttpRequest): Promise<HttpResponse> {
  const registry = new URL(endpoint.base);
  const registryHost = registry.host;
  let url = req.url;
  let method = req.method;
  let body = req.body;
  const seen = new Set<string>();
  for (let hop = 0; ; hop++) {
    // credentials only to the registry itself, over the scheme it was reached by (never https → http)
    const res = await withRetries(() => once({ ...req, url, method, body }, endpoint, url.origin === registry.origin), url);
    if (![301, 302, 303, 307, 308].includes(res.status) || !res.headers.location) return res;
    await discard(res);
    const next = new URL(res.headers.location, url);
    if (hop >= MAX_REDIRECTS || seen.has(next.href)) throw new RegistryError(`${req.method} ${req.url.pathname} on ${registryHost}: redirect loop (last to ${next.host}${next.pathname})`);
    seen.add(url.href);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new RegistryError(`${registryHost} redirected to an unsupported URL scheme ${next.protocol}`);
    if (res.status === 303) {
      method = 'GET';
      body = undefined;
    }
    url = next;
  }
}

async function withRetries(attempt: () => Promise<HttpResponse>, url: URL): Promise<HttpResponse> {
  for (let n = 0; ; n++) {
    let res: HttpResponse;
    try {
      res = await attempt();
    } catch (err) {
      if (n + 1 < MAX_ATTEMPTS && isTransient(err)) {
        await sleep(retryDelay(n));
        continue;
      }
      throw new RegistryError(describeNetworkError(err, url), undefined, { cause: err });
    }
    if (n + 1 < MAX_ATTEMPTS && RETRY_STATUS.has(res.status)) {
      await discard(res);
      await sleep(retryDelay(n, res));
      continue;
    }
    return res;
  }
}

/** The body of an error answer, for the message: `{"errors":[{"code","message"}]}` or the text. */
export async function registryMessage(res: HttpResponse): Promise<string> {
  let text: string;
  try {
    text = (await readBody(res, 64 * 1024, 'error body')).toString('utf8');
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    if (Array.isArray(parsed.errors) && parsed.errors.length) {
      return parsed.errors
        .map((e) => {
          const code = e.code?.toLowerCase().replace(/_/g, ' ');
          return code && e.message && e.message.toLowerCase() !== code ? `${code}: ${e.message}` : (e.message ?? code ?? '');
        })
        .join('; ');
    }
  } catch {
    // not JSON: the text itself, one line
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}


// One repository of one registry, over the OCI distribution API: manifests, blobs (resumable, verified), uploads, mounts.
import type { Readable } from 'node:stream';
import { IntegrityError, RegistryError } from '../errors.js';
import { DigestCounter, sha256, type Digest } from '../util/digest.js';
import { Authorizer } from './auth.js';
import { redact, type Credentials } from './credentials.js';
import { endpointsFor, type Endpoint, type RegistryOptions } from './hosts.js';
import { discard, isTransient, readBody, registryMessage, send, type HttpRequest, type HttpResponse } from './http.js';

/** Manifests bigger than this are refused (as containerd and BuildKit refuse them). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Times a blob download picks up where a dropped connection left it (Range). */
const MAX_RESUMES = 5;

export type Access = 'pull' | 'push';

/** An endpoint whose scheme is settled (https, or http where allowed) and whose auth challenge is known. */
interface Live {
  endpoint: Endpoint;
  auth: Authorizer;
}

const live = new Map<string, Promise<Live>>();

/** TLS spoken to a server that answers plain HTTP (not a certificate problem, which is reported, never bypassed). */
function speaksPlainHttp(err: unknown): boolean {
  const cause = (err as { cause?: unknown }).cause;
  const text = `${(err as Error).message ?? ''} ${cause instanceof Error ? cause.message : ''}`;
  return /wrong version number|packet length too long|EPROTO/i.test(text);
}

/** GET /v2/: settles the scheme (https first; plain http where allowed, as dockerd) and learns the auth challenge. */
async function ping(endpoint: Endpoint, credentials?: Credentials): Promise<Live> {
  const attempt = async (ep: Endpoint): Promise<Live> => {
    const res = await send(ep, { method: 'GET', url: new URL(`${ep.base}/v2/`) });
    const auth = new Authorizer(ep, ep.mirror ? new URL(ep.base).host : ep.domain, credentials);
    if (res.status === 401) auth.learn(res);
    else if (res.status !== 200) {
      const why = await registryMessage(res);
      throw new RegistryError(`${ep.base} is not a registry: GET /v2/ answered ${res.status}${why ? ` (${why})` : ''}`, res.status);
    }
    await discard(res);
    return { endpoint: ep, auth };
  };
  try {
    return await attempt(endpoint);
  } catch (err) {
    if (!endpoint.plainHttpAllowed || !endpoint.base.startsWith('https:') || !speaksPlainHttp(err)) throw err;
    return attempt({ ...endpoint, base: endpoint.base.replace(/^https:/, 'http:') });
  }
}

function livePing(endpoint: Endpoint, credentials?: Credentials): Promise<Live> {
  if (credentials) return ping(endpoint, credentials); // login's own, never shared
  const key = `${endpoint.base}|${endpoint.domain}`;
  let p = live.get(key);
  if (!p) {
    p = ping(endpoint);
    live.set(key, p);
    p.catch(() => live.delete(key));
  }
  return p;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * A repository (`library/busybox` on `docker.io`) as the distribution API serves it. For pulls the
 * registry's mirrors are tried first and the first that answers is kept; pushes go to the registry.
 * Every request carries the scope it needs; a 401 learns the challenge, fetches a token and retries.
 */
export class RegistryRepository {
  private chosen: Live | undefined;
  private readonly candidates: Endpoint[];

  constructor(
    readonly domain: string,
    readonly path: string,
    private readonly opts: RegistryOptions,
    readonly access: Access,
  ) {
    const all = endpointsFor(domain, opts);
    this.candidates = access === 'push' ? all.filter((e) => !e.mirror) : all;
  }

  /** `docker.io/library/busybox`, for messages. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  private scopes(extra: readonly string[] = []): string[] {
    return [`repository:${this.path}:${this.access === 'push' ? 'pull,push' : 'pull'}`, ...extra];
  }

  /** Runs `op` on the chosen endpoint, or tries each candidate (mirrors first) until one serves it. */
  private async onEndpoint<T>(op: (l: Live) => Promise<T>): Promise<T> {
    if (this.chosen) return op(this.chosen);
    let lastError: unknown;
    for (const ep of this.candidates) {
      try {
        const l = await livePing(ep, this.opts.credentials);
        const result = await op(l);
        this.chosen = l;
        return result;
      } catch (err) {
        lastError = err;
        if (!ep.mirror) throw err;
      }
    }
    throw lastError;
  }

  /** A request under /v2/<name>/, authorised for this repository's scope (and `extraScopes`). */
  private async request(l: Live, req: Omit<HttpRequest, 'url' | 'authorization'> & { path: string; absolute?: URL; extraScopes?: string[] }): Promise<HttpResponse> {
    const url = req.absolute ?? new URL(`${l.endpoint.base}/v2/${this.path}/${req.path}`);
    const scopes = this.scopes(req.extraScopes);
    const res = await send(l.endpoint, { ...req, url, authorization: await l.auth.header(scopes) });
    // a 401 from a host a redirect led to (a storage host) is that host's, not a challenge to answer with our credentials
    if (res.status !== 401 || res.url.origin !== new URL(l.endpoint.base).origin) return res;
    const wasKnown = l.auth.known;
    l.auth.learn(res);
    await discard(res);
    const authorization = await l.auth.header(scopes, wasKnown);
    if (!authorization) {
      throw new RegistryError(`${this.access} access to ${this.name} denied: the registry asks for credentials and there are none for ${this.domain} (tsbuild login ${this.domain})`, 401);
    }
    return send(l.endpoint, { ...req, url, authorization });
  }

  /** One line for a failed answer, with the registry's own message, never the user's secrets. */
  private async failure(l: Live, res: HttpResponse, what: string): Promise<RegistryError> {
    const why = redact(await registryMessage(res), await l.auth.secrets());
    const status = res.status;
    const detail = why ? `: ${why}` : '';
    if (status === 401 || status === 403) {
      return new RegistryError(`${what}: ${this.access} access to ${this.name} denied (${status})${detail}`, status);
    }
    if (status === 404) return new RegistryError(`${what}: not found${detail}`, status);
    return new RegistryError(`${what}: ${this.domain} answered ${status}${detail}`, status);
  }

  /** A manifest or index by tag or digest, checked against the digest asked for or the one the registry names. */
  async manifest(reference: string): Promise<FetchedManifest> {
    return this.onEndpoint(async (l) => {
      const res = await this.request(l, { method: 'GET', path: `manifests/${reference}`, headers: { Accept: ACCEPT } });
      const what = `${this.name}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
      if (res.status !== 200) throw await this.failure(l, res, what);
      const bytes = await readBody(res, MAX_MANIFEST_BYTES, `manifest ${what}`);
      const digest = sha256(bytes);
      const expected = reference.startsWith('sha256:') ? reference : (res.headers['docker-content-digest'] as string | undefined);
      if (expected && expected !== digest) throw new IntegrityError(`manifest ${what} does not match its digest: expected ${expected}, got ${digest}`);
      const mediaType = manifestMediaType(bytes, res.headers['content-type']);
      return { bytes, digest, mediaType };
    });
  }

  /** The digest a tag points at now (HEAD), or undefined when the registry does not say. */
  async manifestDigest(reference: string): Promise<Digest | undefined> {
    return this.onEndpoint(async (l) => {
      const res = await this.request(l, { method: 'HEAD', path: `manifests/${reference}`, headers: { Accept: ACCEPT } });
      await discard(res);
      if (res.status !== 200) return undefined;
      const d = res.headers['docker-content-digest'];
      return typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d) ? (d as Digest) : undefined;
    });
  }

  /** A small blob (an image config) read whole and checked. */
  async smallBlob(digest: Digest, limit = 16 << 20): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of this.blob(digest)) {
      size += c.length;
      if (size > limit) throw new RegistryError(`blob ${digest} of ${this.name} is over ${limit} bytes`);
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  /**
   * A blob's bytes, streamed: a dropped connection is picked up where it stopped (Range), a bounded
   * number of times; the digest is checked as the bytes pass and a mismatch fails after the last one.
   */
  async *blob(digest: Digest, size?: number, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
    const counter = new DigestCounter();
    let resumes = 0;
    for (;;) {
      const at = counter.size;
      const res = await this.onEndpoint((l) =>
        this.request(l, { method: 'GET', path: `blobs/${digest}`, headers: at > 0 ? { Range: `bytes=${at}-` } : {} }).then(async (r) => {
          if (r.status !== 200 && r.status !== 206) throw await this.failure(l, r, `blob ${digest} of ${this.name}`);
          return r;
        }),
      );
      let skip = at > 0 ? rangeOverlap(res, at, digest) : 0; // bytes the answer repeats of what we have
      try {
        for await (const raw of res.body) {
          let c = raw as Buffer;
          if (skip > 0) {
            const n = Math.min(skip, c.length);
            skip -= n;
            c = c.subarray(n);
            if (c.length === 0) continue;
          }
          counter.update(c);
          if (size !== undefined && counter.size > size) throw new IntegrityError(`blob ${digest} of ${this.name} is longer than its ${size} bytes`);
          onBytes?.(c.length);
          yield c;
        }
        if (size !== undefined && counter.size < size) throw Object.assign(new Error('premature close'), { code: 'ECONNRESET' });
        break;
      } catch (err) {
        if (err instanceof IntegrityError || !isTransient(err) || ++resumes > MAX_RESUMES) {
          if (err instanceof IntegrityError || err instanceof RegistryError) throw err;
          throw new RegistryError(`download of blob ${digest} from ${this.domain} failed after ${counter.size} bytes: ${(err as Error).message}`, undefined, { cause: err });
        }
      }
    }
    const got = counter.digest();
    if (got !== digest) throw new IntegrityError(`blob ${digest} of ${this.name} does not match its digest (got ${got}): refused`);
  }

  /** Whether the repository has the blob (HEAD). */
  async hasBlob(digest: Digest): Promise<boolean> {
    return this.onEndpoint(async (l) => {
      const res = await this.request(l, { method: 'HEAD', path: `blobs/${digest}` });
      await discard(res);
      if (res.status === 200) return true;
      if (res.status === 404) return false;
      throw await this.failure(l, res, `checking blob ${digest} in ${this.name}`);
    });
  }

  /** Mounts a blob from another repository of the same registry; false when the registry would not. */
  async mountBlob(digest: Digest, fromPath: string): Promise<boolean> {
    return this.onEndpoint(async (l) => {
      const q = new URLSearchParams({ mount: digest, from: fromPath });
      const res = await this.request(l, { method: 'POST', path: `blobs/uploads/?${q}`, extraScopes: [`repository:${fromPath}:pull`] });
      await discard(res);
      if (res.status === 201) return true;
      if (res.status === 202 && res.headers.location) {
        // the registry opened an upload instead: cancel it, the caller uploads
        const del = await this.request(l, { method: 'DELETE', path: '', absolute: new URL(res.headers.location, l.endpoint.base) });
        await discard(del);
        return false;
      }
      if (res.status === 401 || res.status === 403 || res.status === 404) return false;
      throw await this.failure(l, res, `mounting blob ${digest} into ${this.name}`);
    });
  }

  /**
   * Uploads a blob: one monolithic PUT, or in `chunkSize` PATCHes (each with its Content-Range)
   * when asked or when the registry names a maximum chunk length, then the closing PUT.
   */
  async upload(digest: Digest, size: number, open: () => Readable, chunkSize?: number): Promise<void> {
    await this.onEndpoint(async (l) => {
      const start = await this.request(l, { method: 'POST', path: 'blobs/uploads/' });
      await discard(start);
      if (start.status !== 202 || !start.headers.location) throw await this.failure(l, start, `starting upload of ${digest} to ${this.name}`);
      let location = new URL(start.headers.location, l.endpoint.base);
      const maxChunk = Number(start.headers['oci-chunk-max-length']) || undefined;
      const chunk = chunkSize ?? (maxChunk && maxChunk < size ? maxChunk : undefined);
      const withDigest = (u: URL) => {
        const out = new URL(u);
        out.searchParams.set('digest', digest);
        return out;
      };
      const headers = { 'Content-Type': 'application/octet-stream' };
      if (!chunk) {
        const res = await this.request(l, { method: 'PUT', path: '', absolute: withDigest(location), headers: { ...headers, 'Content-Length': String(size) }, body: open });
        if (res.status !== 201) throw await this.failure(l, res, `uploading blob ${digest} to ${this.name}`);
        await discard(res);
        return;
      }
      let offset = 0;
      for await (const piece of chunksOf(open(), chunk)) {
        const range = `${offset}-${offset + piece.length - 1}`;
        const res = await this.request(l, { method: 'PATCH', path: '', absolute: location, headers: { ...headers, 'Content-Range': range }, body: piece });
        await discard(res);
        if (res.status === 416) {
          // a retried PATCH the registry had already stored: the upload's status says how far it got
          const status = await this.request(l, { method: 'GET', path: '', absolute: location });
          await discard(status);
          const end = Number(/^(?:bytes=)?0-(\d+)$/.exec(String(status.headers.range ?? ''))?.[1] ?? NaN);
          if (status.status !== 204 || end !== offset + piece.length - 1) throw await this.failure(l, res, `uploading blob ${digest} to ${this.name} (bytes ${range})`);
          if (status.headers.location) location = new URL(status.headers.location, l.endpoint.base);
        } else if (res.status !== 202 && res.status !== 204) throw await this.failure(l, res, `uploading blob ${digest} to ${this.name} (bytes ${range})`);
        else if (res.headers.location) location = new URL(res.headers.location, l.endpoint.base);
        offset += piece.length;
      }
      const res = await this.request(l, { method: 'PUT', path: '', absolute: withDigest(location), body: Buffer.alloc(0) });
      if (res.status !== 201) throw await this.failure(l, res, `finishing upload of blob ${digest} to ${this.name}`);
      await discard(res);
    });
  }

  /** Puts a manifest under a tag (or its digest); returns the digest the registry stored it as. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    return this.onEndpoint(async (l) => {
      const res = await this.request(l, { method: 'PUT', path: `manifests/${reference}`, headers: { 'Content-Type': mediaType }, body: bytes });
      if (res.status !== 201 && res.status !== 200) throw await this.failure(l, res, `pushing manifest ${this.name}:${reference}`);
      await discard(res);
      const digest = sha256(bytes);
      const said = res.headers['docker-content-digest'];
      if (typeof said === 'string' && said !== digest) throw new IntegrityError(`${this.domain} stored manifest ${this.name}:${reference} as ${said}, not ${digest}`);
      return digest;
    });
  }

  /** GET /v2/ with credentials: what `tsbuild login` checks. */
  async checkLogin(): Promise<void> {
    await this.onEndpoint(async (l) => {
      if (!l.auth.known) return;
      const scopes: string[] = [];
      const authorization = await l.auth.header(scopes, true);
      const res = await send(l.endpoint, { method: 'GET', url: new URL(`${l.endpoint.base}/v2/`), authorization });
      if (res.status !== 200) throw await this.failure(l, res, `login to ${this.domain}`);
      await discard(res);
    });
  }
}

/**
 * How many bytes of an answer to `Range: bytes=at-` we already have: all `at` when the server
 * ignored the range (200), the difference when its 206 starts earlier; a 206 starting later than
 * asked would leave a hole, and fails.
 */
function rangeOverlap(res: HttpResponse, at: number, digest: Digest): number {
  if (res.status === 200) return at;
  const start = Number(/^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1] ?? NaN);
  if (!Number.isFinite(start) || start > at) {
    res.body.destroy();
    throw new RegistryError(`resuming blob ${digest}: the registry answered bytes from ${Number.isFinite(start) ? start : 'an unknown offset'}, not ${at}`);
  }
  return at - start;
}

/** Splits a stream into pieces of `size` bytes (the last one shorter). */
async function* chunksOf(source: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let have = 0;
  for await (const raw of source) {
    let c = raw as Buffer;
    while (c.length > 0) {
      const take = Math.min(size - have, c.length);
      pending.push(c.subarray(0, take));
      have += take;
      c = c.subarray(take);
      if (have === size) {
        yield Buffer.concat(pending);
        pending = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(pending);
}

/** The manifest's media type: its own `mediaType` field, else the Content-Type, else guessed from its shape. */
function manifestMediaType(bytes: Buffer, contentType: string | undefined): string {
  let parsed: { mediaType?: string; manifests?: unknown; schemaVersion?: number; config?: unknown };
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
  } catch {
    throw new IntegrityError('manifest is not valid JSON');
  }
  if (parsed.schemaVersion === 1) throw new RegistryError('the image has a schema 1 manifest, which Docker no longer pulls either: push it again with a current tool');
  if (typeof parsed.mediaType === 'string') return parsed.mediaType;
  const ct = contentType?.split(';')[0]?.trim();
  if (ct && ct !== 'application/json' && ct !== 'text/plain') return ct;
  return parsed.manifests ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
}


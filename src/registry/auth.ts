// Registry auth: WWW-Authenticate challenges, basic credentials, and the bearer-token flow with reuse and refresh.
import { RegistryError } from '../errors.js';
import { credentialsFor, redact, type Credentials } from './credentials.js';
import type { Endpoint } from './hosts.js';
import { readBody, registryMessage, send, type HttpResponse } from './http.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` → schemes and their parameters. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  const word = () => {
    const start = i;
    skip(/[^\s,=]/);
    return header.slice(start, i);
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const name = word();
    if (!name) {
      i++;
      continue;
    }
    skip(/\s/);
    if (header[i] !== '=') {
      out.push({ scheme: name.toLowerCase(), params: {} });
      continue;
    }
    i++;
    skip(/\s/);
    let value = '';
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === '\\' ? header[++i] ?? '' : header[i];
      i++;
    } else value = word();
    const current = out[out.length - 1];
    if (current) current.params[name.toLowerCase()] = value;
  }
  return out;
}

interface Token {
  value: string;
  expires: number;
}

/** Seconds a token is trusted when its server names no lifetime (the token spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;

/**
 * The auth state of one registry endpoint: the scheme its /v2/ challenge named, the user's
 * credentials (read once, from Docker's config and credential helpers), and bearer tokens by scope,
 * reused until they expire and fetched again after.
 */
export class Authorizer {
  private challenge: Challenge | undefined;
  private creds: Promise<Credentials | undefined> | undefined;
  private readonly tokens = new Map<string, Token>();

  /** `credentialHost`: whose credentials to use (the registry's domain; a mirror's own host). */
  constructor(
    private readonly endpoint: Endpoint,
    private readonly credentialHost: string,
    given?: Credentials,
  ) {
    if (given) this.creds = Promise.resolve(given);
  }

  private credentials(): Promise<Credentials | undefined> {
    return (this.creds ??= credentialsFor(this.credentialHost));
  }

  /** Learns the auth scheme from a 401 answer (ping or any request). */
  learn(res: HttpResponse): void {
    const header = res.headers['www-authenticate'];
    const challenges = parseChallenges(Array.isArray(header) ? header.join(', ') : (header ?? ''));
    this.challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic') ?? this.challenge;
  }

  get known(): boolean {
    return this.challenge !== undefined;
  }

  /** The Authorization value for a request needing `scopes`, or undefined while no challenge is known. */
  async header(scopes: readonly string[], fresh = false): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.credentials();
      if (!c?.username || c.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    }
    if (ch.scheme !== 'bearer') throw new RegistryError(`${this.endpoint.base} asks for ${ch.scheme} authentication, which tsbuild does not speak`);
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && !fresh && cached.expires > Date.now()) return `Bearer ${cached.value}`;
    const token = await this.fetchToken(ch.params, scopes);
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /** The token endpoint (distribution's token spec; OAuth2 refresh-token form for identity tokens). */
  private async fetchToken(params: Record<string, string>, scopes: readonly string[]): Promise<Token> {
    const realm = params.realm;
    if (!realm) throw new RegistryError(`${this.endpoint.base} sent a bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`${this.endpoint.base} sent a bearer challenge with an invalid realm "${realm}"`);
    }
    const creds = await this.credentials();
    const allScopes = [...new Set([...scopes, ...(params.scope ? params.scope.split(' ') : [])])];
    let res: HttpResponse;
    // the realm is the auth server the registry names: credentials go there and nowhere else
    // another host: verified against the CAs alone, without the registry's client certificate or --insecure-registry
    const realmEndpoint: Endpoint =
      url.host === new URL(this.endpoint.base).host
        ? { ...this.endpoint, base: `${url.protocol}//${url.host}` }
        : { ...this.endpoint, base: `${url.protocol}//${url.host}`, insecure: false, tls: { ca: this.endpoint.tls.ca } };
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'tsbuild', ...(params.service ? { service: params.service } : {}) });
      if (allScopes.length) form.set('scope', allScopes.join(' '));
      res = await send(realmEndpoint, { method: 'POST', url, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) });
    } else {
      if (params.service) url.searchParams.set('service', params.service);
      for (const s of allScopes) url.searchParams.append('scope', s);
      const basic = creds?.username && creds.password !== undefined ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
      res = await send(realmEndpoint, { method: 'GET', url, authorization: basic });
    }
    if (res.status !== 200) {
      const why = redact(await registryMessage(res), creds);
      throw new RegistryError(`${this.endpoint.domain}: token server ${url.host} answered ${res.status}${why ? `: ${why}` : ''}${creds ? '' : ' (no credentials for it: tsbuild login)'}`, res.status);
    }
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse((await readBody(res, 1 << 20, 'token response')).toString('utf8')) as typeof body;
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(`${this.endpoint.domain}: token server ${url.host} sent an unreadable answer`);
    }
    const value = body.token ?? body.access_token;
    if (!value) throw new RegistryError(`${this.endpoint.domain}: token server ${url.host} sent no token`);
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    // refreshed a little early, so a token does not expire between check and use
    return { value, expires: Date.now() + Math.max(1, seconds - 5) * 1000 };
  }

  /** The credentials in use, to keep them out of messages. */
  async secrets(): Promise<Credentials | undefined> {
    return this.credentials();
  }
}

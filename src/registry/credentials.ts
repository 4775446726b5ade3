// Registry credentials as Docker's CLI keeps them: config.json `auths`, `credHelpers` and `credsStore`.
import { chown, mkdir, open, readFile, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errnoCode, TsbuildError, UsageError } from '../errors.js';
import { randomHex } from '../util/digest.js';

/** What a registry login needs: a username and password, or an OAuth identity (refresh) token. */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token, exchanged at the registry's token endpoint instead of a password. */
  identityToken?: string;
}

/** A `docker-credential-<name>` helper failed, timed out or is not installed. */
export class CredentialHelperError extends TsbuildError {}

/** Docker Hub's key in `auths`, in credential helpers and in `credHelpers`. */
const HUB_KEY = 'https://index.docker.io/v1/';
const HUB_HOST = 'index.docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const HELPER_PREFIX = 'docker-credential-';
const HELPER_TIMEOUT_MS = 30_000;
/** The helper protocol's fixed answer when it holds nothing for a server. */
const NOT_FOUND_MESSAGE = 'credentials not found in native keychain';
/** A helper's username that marks its secret as an identity token. */
const TOKEN_USERNAME = '<token>';

type ConfigFile = Record<string, unknown>;
type AuthEntry = Record<string, unknown>;
type HelperAction = 'get' | 'store' | 'erase';

/** `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json` when DOCKER_CONFIG is unset or empty. */
export function dockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/**
 * The credentials Docker would use for a registry (`docker.io`, `ghcr.io`, `localhost:5000`), or
 * undefined when there are none. DOCKER_AUTH_CONFIG `auths` come first, as in Docker; then the
 * helper configured for the host (`credHelpers`, else `credsStore`), else the file's `auths`.
 */
export async function credentialsFor(registryDomain: string): Promise<Credentials | undefined> {
  const fromEnv = environmentCredentials(registryDomain);
  if (fromEnv) return fromEnv;
  const file = dockerConfigPath();
  const config = await readConfig(file);
  if (!config) return undefined;
  const helper = helperFor(config, registryDomain);
  if (helper) return helperGet(helper, registryKey(registryDomain), file);
  return fileCredentials(config, registryDomain, configLabel(file));
}

/**
 * Saves a login as `docker login` does: through the configured helper (the file then keeps only an
 * empty `auths` entry, no secret), else as `auths[key].auth`. Every other key of the file is kept;
 * the file is replaced atomically with mode 0600.
 */
export async function saveCredentials(registryDomain: string, creds: { username: string; password: string }): Promise<void> {
  if (creds.username === '' || creds.username.includes(':')) throw new UsageError('the username must be non-empty and must not contain ":"');
  const file = dockerConfigPath();
  const config = (await readConfig(file)) ?? {};
  const key = registryKey(registryDomain);
  const auths = authsOf(config, configLabel(file), true);
  const helper = helperFor(config, registryDomain);
  if (helper) {
    const request = JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password });
    const result = await runHelper(helper, 'store', request, file);
    if (!result.ok) throw helperFailure(helper, 'store', redact(result.message, creds));
    if (isEmptyEntry(auths[key])) return;
    auths[key] = {};
  } else {
    auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  }
  await writeConfig(file, config);
}

/**
 * Logs out as `docker logout` does: erases the helper's entry (also under the `http://` and
 * `https://` forms of the host) and every `auths` entry naming the registry. False when there was
 * nothing to remove.
 */
export async function removeCredentials(registryDomain: string): Promise<boolean> {
  const file = dockerConfigPath();
  const config = await readConfig(file);
  if (!config) return false;
  let removed = false;
  const helper = helperFor(config, registryDomain);
  if (helper) {
    const key = registryKey(registryDomain);
    const legacy = key === HUB_KEY ? [] : [`http://${key}`, `https://${key}`];
    removed = await helperErase(helper, key, file, true);
    for (const address of legacy) removed = (await helperErase(helper, address, file, false)) || removed;
  }
  const auths = authsOf(config, configLabel(file), false);
  const host = canonicalHost(registryDomain);
  const stale = Object.keys(auths).filter((k) => canonicalHost(k) === host);
  for (const k of stale) delete auths[k];
  if (stale.length > 0) await writeConfig(file, config);
  return removed || stale.length > 0;
}

/**
 * Replaces every occurrence of the password, the identity token and the base64 `user:password`
 * (also URL- and form-encoded) with `***`, for messages that may echo a request or a helper.
 */
export function redact(text: string, creds: Credentials | undefined): string {
  if (!creds) return text;
  const secrets = new Set<string>();
  const add = (secret: string) => {
    for (const form of [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)]) secrets.add(form);
  };
  if (creds.password) {
    const basic = Buffer.from(`${creds.username ?? ''}:${creds.password}`).toString('base64');
    add(creds.password);
    add(basic);
    add(basic.replace(/=+$/, ''));
  }
  if (creds.identityToken) add(creds.identityToken);
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}

/** The key Docker stores a registry under: the Hub's URL, or `host[:port]`. */
function registryKey(registryDomain: string): string {
  const host = convertToHostname(registryDomain);
  return HUB_ALIASES.has(host.toLowerCase()) ? HUB_KEY : host;
}

/** Docker's ConvertToHostname: `https://host:5000/v1/` is `host:5000`, `host/path` is `host`. */
function convertToHostname(address: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(address);
  if (!scheme) return address.split('/')[0];
  const authority = address.slice(scheme[0].length).split(/[/?#]/)[0];
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return host === '' ? address.split('/')[0] : host;
}

/** The host compared when matching keys: lowercase, every Docker Hub name as one. */
function canonicalHost(address: string): string {
  const host = convertToHostname(address).toLowerCase();
  return HUB_ALIASES.has(host) ? HUB_HOST : host;
}

function configLabel(file: string): string {
  return `Docker config file ${file}`;
}

/** The parsed config file, undefined when it does not exist; a clear error when it is malformed. */
async function readConfig(file: string): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new UsageError(`cannot read Docker config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, configLabel(file));
}

/** JSON text to a config object; the error never quotes the text, which may hold secrets. */
function parseConfig(text: string, source: string): ConfigFile {
  if (text.trim() === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`invalid ${source}: not valid JSON${jsonErrorPlace(err, text)}`);
  }
  if (data === null) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`invalid ${source}: not a JSON object`);
  return data as ConfigFile;
}

/** ` (line 3, column 7)` from V8's "at position N", or nothing. */
function jsonErrorPlace(err: unknown, text: string): string {
  const match = /at position (\d+)/.exec(err instanceof Error ? err.message : '');
  if (!match) return '';
  const before = text.slice(0, Number(match[1])).split('\n');
  return ` (line ${before.length}, column ${before[before.length - 1].length + 1})`;
}

/** The `auths` object; created when `create` is set and the file has none. */
function authsOf(config: ConfigFile, source: string, create: boolean): Record<string, AuthEntry> {
  const auths = config.auths;
  if (auths === undefined || auths === null) {
    const fresh: Record<string, AuthEntry> = {};
    if (create) config.auths = fresh;
    return fresh;
  }
  if (typeof auths !== 'object' || Array.isArray(auths)) throw new UsageError(`invalid ${source}: "auths" is not an object`);
  return auths as Record<string, AuthEntry>;
}

/** The helper for a registry: a `credHelpers` entry for its host (`""` means the file), else `credsStore`. */
function helperFor(config: ConfigFile, registryDomain: string): string | undefined {
  const helpers = config.credHelpers;
  if (helpers && typeof helpers === 'object' && !Array.isArray(helpers)) {
    const table = helpers as Record<string, unknown>;
    const host = canonicalHost(registryDomain);
    const key = registryKey(registryDomain);
    const match = key in table ? key : Object.keys(table).find((k) => canonicalHost(k) === host);
    if (match !== undefined) return typeof table[match] === 'string' && table[match] !== '' ? (table[match] as string) : undefined;
  }
  return typeof config.credsStore === 'string' && config.credsStore !== '' ? config.credsStore : undefined;
}

/** Credentials from `auths`: the exact key first, then any key naming the same host. */
function fileCredentials(config: ConfigFile, registryDomain: string, source: string): Credentials | undefined {
  const auths = authsOf(config, source, false);
  const key = registryKey(registryDomain);
  const host = canonicalHost(registryDomain);
  const candidates = [key, ...Object.keys(auths).filter((k) => k !== key && canonicalHost(k) === host)];
  for (const k of candidates) {
    const creds = k in auths ? entryCredentials(auths[k], k, source) : undefined;
    if (creds) return creds;
  }
  return undefined;
}

/** One `auths` entry: `auth` (base64 `user:password`) wins over `username`/`password`, as in Docker. */
function entryCredentials(entry: AuthEntry, key: string, source: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) throw new UsageError(`invalid ${source}: auths["${key}"] is not an object`);
  const text = (name: string) => (typeof entry[name] === 'string' && entry[name] !== '' ? (entry[name] as string) : undefined);
  const creds: Credentials = {};
  const auth = text('auth');
  if (auth) Object.assign(creds, decodeAuth(auth, key, source));
  else {
    creds.username = text('username');
    creds.password = text('password');
  }
  creds.identityToken = text('identitytoken');
  return compact(creds);
}

/** base64 `user:password`; the error names the entry, never its value. */
function decodeAuth(auth: string, key: string, source: string): Credentials {
  const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(auth) ? Buffer.from(auth, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new UsageError(`invalid ${source}: auths["${key}"].auth is not base64 of "user:password"`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
}

/** The credentials without empty fields, or undefined when none is left. */
function compact(creds: Credentials): Credentials | undefined {
  const out: Credentials = {};
  if (creds.username) out.username = creds.username;
  if (creds.password) out.password = creds.password;
  if (creds.identityToken) out.identityToken = creds.identityToken;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Docker 28's DOCKER_AUTH_CONFIG: a config.json-shaped JSON whose `auths` come before the file's. */
function environmentCredentials(registryDomain: string): Credentials | undefined {
  const value = process.env.DOCKER_AUTH_CONFIG;
  if (!value) return undefined;
  return fileCredentials(parseConfig(value, 'DOCKER_AUTH_CONFIG'), registryDomain, 'DOCKER_AUTH_CONFIG');
}

/** `helper get`: not-found is no credentials; `<token>` as username marks an identity token. */
async function helperGet(helper: string, serverUrl: string, file: string): Promise<Credentials | undefined> {
  const result = await runHelper(helper, 'get', serverUrl, file);
  if (!result.ok) {
    if (result.notFound) return undefined;
    throw helperFailure(helper, 'get', result.message);
  }
  let reply: unknown;
  try {
    reply = JSON.parse(result.stdout);
  } catch {
    reply = undefined;
  }
  if (typeof reply !== 'object' || reply === null) throw helperFailure(helper, 'get', 'its output is not a JSON object');
  const { Username: username, Secret: secret } = reply as Record<string, unknown>;
  if (typeof username !== 'string' || typeof secret !== 'string') throw helperFailure(helper, 'get', 'its output lacks Username or Secret');
  return compact(username === TOKEN_USERNAME ? { identityToken: secret } : { username, password: secret });
}

/** `helper erase`: true when erased, false when it held nothing; other failures throw when `required`. */
async function helperErase(helper: string, serverUrl: string, file: string, required: boolean): Promise<boolean> {
  const result = await runHelper(helper, 'erase', serverUrl, file);
  if (result.ok) return true;
  if (result.notFound || !required) return false;
  throw helperFailure(helper, 'erase', result.message);
}

type HelperResult = { ok: true; stdout: string } | { ok: false; notFound: boolean; message: string };

/** Runs `docker-credential-<helper> <action>` with `input` on stdin; a failure's message is one line. */
async function runHelper(helper: string, action: HelperAction, input: string, file: string): Promise<HelperResult> {
  const { execa } = await import('execa'); // loaded only with a helper configured: it costs start-up
  const result = await execa(`${HELPER_PREFIX}${helper}`, [action], { input, reject: false, timeout: HELPER_TIMEOUT_MS });
  if (!result.failed) return { ok: true, stdout: result.stdout };
  if ('code' in result && result.code === 'ENOENT') {
    throw new CredentialHelperError(`credential helper ${HELPER_PREFIX}${helper} (configured in ${file}) is not installed: not found in PATH`);
  }
  if (result.timedOut) return { ok: false, notFound: false, message: `no answer within ${HELPER_TIMEOUT_MS / 1000} s` };
  const stdout = result.stdout.trim();
  const stderr = result.stderr.trim();
  if (stdout === NOT_FOUND_MESSAGE || stderr === NOT_FOUND_MESSAGE) return { ok: false, notFound: true, message: NOT_FOUND_MESSAGE };
  const line = firstLine(stdout) || firstLine(stderr) || `exit code ${result.exitCode ?? result.signal ?? 'unknown'}`;
  return { ok: false, notFound: false, message: line };
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 200 ? `${line.trim().slice(0, 200)}...` : line.trim();
}

function helperFailure(helper: string, action: HelperAction, message: string): CredentialHelperError {
  return new CredentialHelperError(`credential helper ${HELPER_PREFIX}${helper} ${action} failed: ${message}`);
}

function isEmptyEntry(entry: unknown): boolean {
  return typeof entry === 'object' && entry !== null && Object.keys(entry).length === 0;
}

/**
 * Replaces the config file atomically: a 0600 temp file beside the real file (a symlinked
 * config.json stays a symlink), synced, given the old file's owner when root, then renamed.
 */
async function writeConfig(file: string, config: ConfigFile): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const target = await symlinkTarget(file);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomHex(4)}.tmp`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(config, null, '\t')}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await keepOwner(target, temp);
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  } catch (err) {
    throw new TsbuildError(`cannot save Docker config file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The file a (possibly dangling) symlink points at, or the path itself. */
async function symlinkTarget(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  try {
    return path.resolve(path.dirname(file), await readlink(file));
  } catch {
    return file;
  }
}

/** Root writing a user's config (sudo with DOCKER_CONFIG) leaves it owned by that user. */
async function keepOwner(original: string, temp: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const old = await stat(original).catch(() => undefined);
  if (old && (old.uid !== 0 || old.gid !== 0)) await chown(temp, old.uid, old.gid).catch(() => undefined);
}

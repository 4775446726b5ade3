import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { CredentialHelperError, credentialsFor, dockerConfigPath, redact, removeCredentials, saveCredentials } from '../../src/registry/credentials.js';
import { tempDir } from '../helpers/fixtures.js';

const HUB = 'https://index.docker.io/v1/';
const b64 = (s: string) => Buffer.from(s).toString('base64');

const savedEnv = { ...process.env };
let configDir: string;
let binDir: string;

beforeEach(() => {
  configDir = path.join(tempDir('docker-config-'), 'cfg');
  binDir = tempDir('cred-helpers-');
  process.env.DOCKER_CONFIG = configDir;
  process.env.PATH = `${binDir}:${savedEnv.PATH ?? '/usr/bin:/bin'}`;
  delete process.env.DOCKER_AUTH_CONFIG;
});

afterEach(() => {
  for (const k of ['DOCKER_CONFIG', 'PATH', 'HOME', 'DOCKER_AUTH_CONFIG', 'TESTHELPER_FAIL']) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

function writeConfig(config: unknown): string {
  mkdirSync(configDir, { recursive: true });
  const file = path.join(configDir, 'config.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

function readConfig(): Record<string, unknown> & { auths: Record<string, Record<string, string>> } {
  return JSON.parse(readFileSync(path.join(configDir, 'config.json'), 'utf8'));
}

/**
 * A real credential helper, `docker-credential-<name>`, keeping one file per server URL (named by
 * its hex) in a store directory and logging `action server-url` lines. TESTHELPER_FAIL=1 makes
 * every call fail with a two-line message that echoes its input (to check redaction).
 */
function installHelper(name: string) {
  const store = tempDir(`helper-${name}-`);
  const log = path.join(store, 'calls.log');
  const script = `#!/bin/sh
store='${store}'
input=$(cat)
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \\n'; }
if [ -n "$TESTHELPER_FAIL" ]; then echo "keychain is locked: $input"; echo "second line"; exit 1; fi
case "$1" in
get)
  echo "get $input" >> '${log}'
  f="$store/$(hex "$input").json"
  if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
  url=$(printf %s "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
  echo "store $url" >> '${log}'
  printf %s "$input" > "$store/$(hex "$url").json" ;;
erase)
  echo "erase $input" >> '${log}'
  f="$store/$(hex "$input").json"
  if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*) echo "unknown action $1"; exit 1 ;;
esac
`;
  const exe = path.join(binDir, `docker-credential-${name}`);
  writeFileSync(exe, script);
  chmodSync(exe, 0o755);
  const file = (url: string) => path.join(store, `${Buffer.from(url).toString('hex')}.json`);
  return {
    seed: (url: string, username: string, secret: string) => writeFileSync(file(url), JSON.stringify({ ServerURL: url, Username: username, Secret: secret })),
    stored: (url: string) => (existsSync(file(url)) ? JSON.parse(readFileSync(file(url), 'utf8')) : undefined),
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
  };
}

describe('dockerConfigPath', () => {
  it('is $DOCKER_CONFIG/config.json when set', () => {
    process.env.DOCKER_CONFIG = '/somewhere/docker';
    expect(dockerConfigPath()).toBe('/somewhere/docker/config.json');
  });

  it.each([['unset', undefined], ['empty', '']])('is ~/.docker/config.json when DOCKER_CONFIG is %s', (_, value) => {
    if (value === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = value;
    process.env.HOME = '/home/someone';
    expect(dockerConfigPath()).toBe('/home/someone/.docker/config.json');
  });
});

describe('credentialsFor from auths', () => {
  it('is undefined without a config file or directory', async () => {
    expect(await credentialsFor('ghcr.io')).toBeUndefined();
  });

  it('is undefined for an empty config file', async () => {
    writeConfig('');
    expect(await credentialsFor('ghcr.io')).toBeUndefined();
  });

  it.each([
    ['auth base64', { 'ghcr.io': { auth: b64('me:s3cret') } }, 'ghcr.io', { username: 'me', password: 's3cret' }],
    ['a password holding ":"', { 'ghcr.io': { auth: b64('me:a:b:c') } }, 'ghcr.io', { username: 'me', password: 'a:b:c' }],
    ['username/password fields', { 'ghcr.io': { username: 'me', password: 'pw' } }, 'ghcr.io', { username: 'me', password: 'pw' }],
    ['auth winning over fields', { 'ghcr.io': { auth: b64('a:b'), username: 'c', password: 'd' } }, 'ghcr.io', { username: 'a', password: 'b' }],
    ['identitytoken', { 'ghcr.io': { auth: b64('me:'), identitytoken: 'refresh-1' } }, 'ghcr.io', { username: 'me', identityToken: 'refresh-1' }],
    ['identitytoken alone', { 'ghcr.io': { identitytoken: 'refresh-2' } }, 'ghcr.io', { identityToken: 'refresh-2' }],
    ['docker.io under the Hub key', { [HUB]: { auth: b64('hub:pw') } }, 'docker.io', { username: 'hub', password: 'pw' }],
    ['index.docker.io under the Hub key', { [HUB]: { auth: b64('hub:pw') } }, 'index.docker.io', { username: 'hub', password: 'pw' }],
    ['registry-1.docker.io under the Hub key', { [HUB]: { auth: b64('hub:pw') } }, 'registry-1.docker.io', { username: 'hub', password: 'pw' }],
    ['docker.io under a bare host key', { 'index.docker.io': { auth: b64('hub:pw') } }, 'docker.io', { username: 'hub', password: 'pw' }],
    ['a key with http://', { 'http://localhost:5000': { auth: b64('l:pw') } }, 'localhost:5000', { username: 'l', password: 'pw' }],
    ['a key with https:// and a path', { 'https://127.0.0.1:5000/v2/': { auth: b64('i:pw') } }, '127.0.0.1:5000', { username: 'i', password: 'pw' }],
    ['a key with https:// and /v1/', { 'https://ghcr.io/v1/': { auth: b64('g:pw') } }, 'ghcr.io', { username: 'g', password: 'pw' }],
    ['a key in upper case', { 'GHCR.IO': { auth: b64('g:pw') } }, 'ghcr.io', { username: 'g', password: 'pw' }],
    ['the exact key before a legacy one', { 'https://ghcr.io': { auth: b64('old:pw') }, 'ghcr.io': { auth: b64('new:pw') } }, 'ghcr.io', { username: 'new', password: 'pw' }],
    ['a filled entry before an empty one', { 'ghcr.io': {}, 'https://ghcr.io': { auth: b64('old:pw') } }, 'ghcr.io', { username: 'old', password: 'pw' }],
    ['no entry for another port', { 'localhost:5001': { auth: b64('l:pw') } }, 'localhost:5000', undefined],
    ['no entry for another host', { 'quay.io': { auth: b64('q:pw') } }, 'ghcr.io', undefined],
    ['no Hub credentials for another registry', { [HUB]: { auth: b64('hub:pw') } }, 'ghcr.io', undefined],
    ['an empty entry', { 'ghcr.io': {} }, 'ghcr.io', undefined],
  ])('reads %s', async (_, auths, domain, expected) => {
    writeConfig({ auths });
    expect(await credentialsFor(domain)).toEqual(expected);
  });

  it('takes DOCKER_AUTH_CONFIG before the file, as Docker 28 does', async () => {
    writeConfig({ auths: { 'ghcr.io': { auth: b64('file:pw') }, 'quay.io': { auth: b64('q:pw') } } });
    process.env.DOCKER_AUTH_CONFIG = JSON.stringify({ auths: { 'ghcr.io': { auth: b64('env:pw') } } });
    expect(await credentialsFor('ghcr.io')).toEqual({ username: 'env', password: 'pw' });
    expect(await credentialsFor('quay.io')).toEqual({ username: 'q', password: 'pw' });
  });
});

describe('a malformed config file', () => {
  it.each([
    ['broken JSON', '{"auths": {"ghcr.io": {"auth": "c2VjcmV0LXZhbHVl" ', /invalid Docker config file .*config\.json: not valid JSON/],
    ['a JSON array', '[1, 2]', /invalid Docker config file .*config\.json: not a JSON object/],
    ['auths of the wrong type', '{"auths": "c2VjcmV0LXZhbHVl"}', /"auths" is not an object/],
    ['an auth that is not base64', '{"auths": {"ghcr.io": {"auth": "c2VjcmV0LXZhbHVl!"}}}', /auths\["ghcr.io"\]\.auth is not base64 of "user:password"/],
    ['an auth without a colon', `{"auths": {"ghcr.io": {"auth": "${b64('secret-value')}"}}}`, /auths\["ghcr.io"\]\.auth is not base64/],
  ])('%s is a one-line UsageError naming the file, not its content', async (_, text, message) => {
    const file = writeConfig(text);
    const err = await credentialsFor('ghcr.io').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    const msg = (err as Error).message;
    expect(msg).toMatch(message);
    expect(msg).toContain(file);
    expect(msg).not.toContain('\n');
    expect(msg).not.toContain('c2VjcmV0LXZhbHVl');
    expect(msg).not.toContain('secret-value');
  });

  it('broken JSON names the line and column when V8 gives a position', async () => {
    writeConfig('{\n  "auths": {\n    "a": 1,\n  }\n}');
    await expect(credentialsFor('ghcr.io')).rejects.toThrow(/not valid JSON \(line 4, column 3\)/);
  });

  it('is an error in DOCKER_AUTH_CONFIG too', async () => {
    process.env.DOCKER_AUTH_CONFIG = '{oops';
    await expect(credentialsFor('ghcr.io')).rejects.toThrow(/invalid DOCKER_AUTH_CONFIG: not valid JSON/);
  });
});

describe('credentialsFor through credential helpers', () => {
  it('asks credsStore with the host, on stdin', async () => {
    const helper = installHelper('testhelper');
    helper.seed('ghcr.io', 'me', 'from-helper');
    writeConfig({ credsStore: 'testhelper', auths: { 'ghcr.io': {} } });
    expect(await credentialsFor('ghcr.io')).toEqual({ username: 'me', password: 'from-helper' });
    expect(helper.calls()).toEqual(['get ghcr.io']);
  });

  it('asks with the Hub key for docker.io', async () => {
    const helper = installHelper('testhelper');
    helper.seed(HUB, 'hub', 'pw');
    writeConfig({ credsStore: 'testhelper' });
    expect(await credentialsFor('docker.io')).toEqual({ username: 'hub', password: 'pw' });
    expect(helper.calls()).toEqual([`get ${HUB}`]);
  });

  it('reads Username <token> as an identity token', async () => {
    const helper = installHelper('testhelper');
    helper.seed('ghcr.io', '<token>', 'refresh-3');
    writeConfig({ credsStore: 'testhelper' });
    expect(await credentialsFor('ghcr.io')).toEqual({ identityToken: 'refresh-3' });
  });

  it('takes "credentials not found" as no credentials, and ignores the file auths as Docker does', async () => {
    installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper', auths: { 'ghcr.io': { auth: b64('file:pw') } } });
    expect(await credentialsFor('ghcr.io')).toBeUndefined();
  });

  it.each([
    ['the exact host', { 'ghcr.io': 'other' }],
    ['an https:// form of the host', { 'https://ghcr.io': 'other' }],
  ])('prefers credHelpers for %s over credsStore', async (_, credHelpers) => {
    const main = installHelper('testhelper');
    const other = installHelper('other');
    main.seed('ghcr.io', 'main', 'pw');
    other.seed('ghcr.io', 'other', 'pw');
    writeConfig({ credsStore: 'testhelper', credHelpers });
    expect(await credentialsFor('ghcr.io')).toEqual({ username: 'other', password: 'pw' });
    expect(main.calls()).toEqual([]);
  });

  it('uses credHelpers keyed by the Hub URL for docker.io', async () => {
    const other = installHelper('other');
    other.seed(HUB, 'hub', 'pw');
    writeConfig({ credHelpers: { [HUB]: 'other' } });
    expect(await credentialsFor('docker.io')).toEqual({ username: 'hub', password: 'pw' });
  });

  it('reads the file when credHelpers names no helper ("")', async () => {
    const main = installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper', credHelpers: { 'ghcr.io': '' }, auths: { 'ghcr.io': { auth: b64('file:pw') } } });
    expect(await credentialsFor('ghcr.io')).toEqual({ username: 'file', password: 'pw' });
    expect(main.calls()).toEqual([]);
  });

  it('reports a failing helper in one line, naming it', async () => {
    installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper' });
    process.env.TESTHELPER_FAIL = '1';
    const err = await credentialsFor('ghcr.io').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialHelperError);
    expect((err as Error).message).toBe('credential helper docker-credential-testhelper get failed: keychain is locked: ghcr.io');
  });

  it('reports a helper that is not installed', async () => {
    const file = writeConfig({ credsStore: 'missing' });
    await expect(credentialsFor('ghcr.io')).rejects.toThrow(`credential helper docker-credential-missing (configured in ${file}) is not installed: not found in PATH`);
  });

  it('reports a helper whose output is not JSON, without quoting it', async () => {
    const exe = path.join(binDir, 'docker-credential-garbled');
    writeFileSync(exe, '#!/bin/sh\ncat >/dev/null\necho "Secret: hunter2"\n');
    chmodSync(exe, 0o755);
    writeConfig({ credsStore: 'garbled' });
    const err = await credentialsFor('ghcr.io').catch((e: unknown) => e);
    expect((err as Error).message).toBe('credential helper docker-credential-garbled get failed: its output is not a JSON object');
  });
});

describe('saveCredentials', () => {
  it('writes auths[host].auth, creating the directory 0700 and the file 0600', async () => {
    await saveCredentials('localhost:5000', { username: 'me', password: 'pw' });
    const file = path.join(configDir, 'config.json');
    expect(readConfig()).toEqual({ auths: { 'localhost:5000': { auth: b64('me:pw') } } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    expect(await credentialsFor('localhost:5000')).toEqual({ username: 'me', password: 'pw' });
  });

  it('saves docker.io under the Hub key', async () => {
    await saveCredentials('docker.io', { username: 'hub', password: 'pw' });
    expect(Object.keys(readConfig().auths)).toEqual([HUB]);
  });

  it('keeps every other key, replaces the entry whole, leaves no temp file and sets 0600', async () => {
    const file = writeConfig({
      auths: { 'quay.io': { auth: b64('q:pw'), email: 'q@example.com' }, 'ghcr.io': { auth: b64('old:pw'), identitytoken: 'stale' } },
      HttpHeaders: { 'X-Meta': 'yes' },
      credHelpers: { 'gcr.io': 'gcloud' },
      currentContext: 'default',
      somethingNew: { nested: [1, 2] },
    });
    chmodSync(file, 0o644);
    await saveCredentials('ghcr.io', { username: 'new', password: 'pw2' });
    expect(readConfig()).toEqual({
      auths: { 'quay.io': { auth: b64('q:pw'), email: 'q@example.com' }, 'ghcr.io': { auth: b64('new:pw2') } },
      HttpHeaders: { 'X-Meta': 'yes' },
      credHelpers: { 'gcr.io': 'gcloud' },
      currentContext: 'default',
      somethingNew: { nested: [1, 2] },
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(configDir)).toEqual(['config.json']);
  });

  it('writes through a symlinked config.json, which stays a symlink', async () => {
    const real = path.join(tempDir('dotfiles-'), 'docker.json');
    writeFileSync(real, JSON.stringify({ auths: {} }));
    mkdirSync(configDir, { recursive: true });
    symlinkSync(real, path.join(configDir, 'config.json'));
    await saveCredentials('ghcr.io', { username: 'me', password: 'pw' });
    expect(lstatSync(path.join(configDir, 'config.json')).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(real, 'utf8'))).toEqual({ auths: { 'ghcr.io': { auth: b64('me:pw') } } });
  });

  it('stores through credsStore and keeps no secret in the file', async () => {
    const helper = installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper', auths: { 'ghcr.io': { auth: b64('plain:old') } } });
    await saveCredentials('ghcr.io', { username: 'me', password: 'top-secret' });
    expect(helper.stored('ghcr.io')).toEqual({ ServerURL: 'ghcr.io', Username: 'me', Secret: 'top-secret' });
    expect(readConfig()).toEqual({ credsStore: 'testhelper', auths: { 'ghcr.io': {} } });
    expect(await credentialsFor('ghcr.io')).toEqual({ username: 'me', password: 'top-secret' });
  });

  it('stores through credHelpers under the Hub key for docker.io', async () => {
    const other = installHelper('other');
    writeConfig({ credHelpers: { [HUB]: 'other' } });
    await saveCredentials('docker.io', { username: 'hub', password: 'pw' });
    expect(other.stored(HUB)).toEqual({ ServerURL: HUB, Username: 'hub', Secret: 'pw' });
    expect(readConfig().auths).toEqual({ [HUB]: {} });
  });

  it('reports a failing helper store without the secret', async () => {
    installHelper('testhelper');
    const before = writeConfig({ credsStore: 'testhelper' });
    process.env.TESTHELPER_FAIL = '1';
    const err = await saveCredentials('ghcr.io', { username: 'me', password: 'top-secret' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialHelperError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^credential helper docker-credential-testhelper store failed: keychain is locked: /);
    expect(msg).toContain('***');
    expect(msg).not.toContain('top-secret');
    expect(readFileSync(before, 'utf8')).toBe(JSON.stringify({ credsStore: 'testhelper' }));
  });

  it.each([[''], ['a:b']])('refuses the username %j', async (username) => {
    await expect(saveCredentials('ghcr.io', { username, password: 'pw' })).rejects.toBeInstanceOf(UsageError);
  });
});

describe('removeCredentials', () => {
  it('is false without a config file', async () => {
    expect(await removeCredentials('ghcr.io')).toBe(false);
  });

  it('removes every auths entry naming the host and keeps the rest', async () => {
    writeConfig({ auths: { 'ghcr.io': { auth: b64('a:b') }, 'https://ghcr.io': { auth: b64('c:d') }, 'quay.io': { auth: b64('q:pw') } }, credsStore: '' });
    expect(await removeCredentials('ghcr.io')).toBe(true);
    expect(readConfig()).toEqual({ auths: { 'quay.io': { auth: b64('q:pw') } }, credsStore: '' });
    expect(await credentialsFor('ghcr.io')).toBeUndefined();
    expect(await removeCredentials('ghcr.io')).toBe(false);
  });

  it('removes Docker Hub credentials for docker.io', async () => {
    writeConfig({ auths: { [HUB]: { auth: b64('hub:pw') } } });
    expect(await removeCredentials('docker.io')).toBe(true);
    expect(readConfig().auths).toEqual({});
  });

  it('erases from the helper as docker logout does, then reports nothing left', async () => {
    const helper = installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper' });
    await saveCredentials('localhost:5000', { username: 'me', password: 'pw' });
    expect(await removeCredentials('localhost:5000')).toBe(true);
    expect(helper.stored('localhost:5000')).toBeUndefined();
    expect(readConfig()).toEqual({ credsStore: 'testhelper', auths: {} });
    expect(helper.calls()).toEqual(['store localhost:5000', 'erase localhost:5000', 'erase http://localhost:5000', 'erase https://localhost:5000']);
    expect(await removeCredentials('localhost:5000')).toBe(false);
  });

  it('reports a failing helper erase', async () => {
    installHelper('testhelper');
    writeConfig({ credsStore: 'testhelper' });
    process.env.TESTHELPER_FAIL = '1';
    await expect(removeCredentials('ghcr.io')).rejects.toThrow('credential helper docker-credential-testhelper erase failed: keychain is locked: ghcr.io');
  });
});

describe('redact', () => {
  const creds = { username: 'me', password: 'p@ss word!', identityToken: 'tok-123' };
  it.each([
    ['the password', 'bad login p@ss word! here', 'bad login *** here'],
    ['the URL-encoded password', 'url ?password=p%40ss%20word! end', 'url ?password=*** end'],
    ['the form-encoded password', 'body password=p%40ss+word%21', 'body password=***'],
    ['the base64 auth', `Authorization: Basic ${b64('me:p@ss word!')}`, 'Authorization: Basic ***'],
    ['the identity token', 'refresh_token=tok-123&x=1', 'refresh_token=***&x=1'],
    ['every occurrence', 'tok-123 tok-123', '*** ***'],
    ['nothing else', 'username me, nothing secret', 'username me, nothing secret'],
  ])('hides %s', (_, text, expected) => {
    expect(redact(text, creds)).toBe(expected);
  });

  it('leaves text alone without credentials or secrets', () => {
    expect(redact('p@ss', undefined)).toBe('p@ss');
    expect(redact('me', { username: 'me' })).toBe('me');
  });
});

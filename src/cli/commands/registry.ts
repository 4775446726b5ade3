// pull, push, tag, login and logout: the commands that talk to registries, with docker's output.
import { readFileSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { parsePlatform } from '../../image/platform.js';
import { familiarName, fullName, parseReference, type ImageReference } from '../../image/reference.js';
import { removeCredentials, saveCredentials } from '../../registry/credentials.js';
import { pullImage } from '../../registry/pull.js';
import type { Compression } from '../../registry/push.js';
import { pushStored as pushStoredImage } from '../../registry/push-stored.js';
import { RegistryRepository } from '../../registry/repository.js';
import { getImage, tagImage } from '../../store/stored-image.js';
import type { Store } from '../../store/store.js';
import type { Digest } from '../../util/digest.js';
import type { Io } from '../io.js';
import { registryOptions, type RegistryFlags } from '../registry-flags.js';

/** `tsbuild pull REF`: docker pull's lines (`latest: Pulling from library/busybox`, a line per layer, Digest, Status). */
export async function pullCommand(store: Store, name: string, flags: RegistryFlags & { platform?: string; quiet?: boolean }, io: Io): Promise<void> {
  const ref = parseReference(name);
  const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
  const say = flags.quiet ? () => undefined : io.out;
  say(`${ref.digest ?? ref.tag}: Pulling from ${ref.path}`);
  const before = (() => {
    try {
      return getImage(store, fullName(ref)).id;
    } catch {
      return undefined;
    }
  })();
  const { id, digest } = await pullImage(store, ref, {
    registry: registryOptions(flags),
    platform,
    events: {
      layer: (d, state) => {
        if (state === 'exists') say(`${d.slice(7, 19)}: Already exists`);
        else if (state === 'done') say(`${d.slice(7, 19)}: Pull complete`);
      },
    },
  });
  say(`Digest: ${digest}`);
  const shown = familiarName(ref);
  say(before === id ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}`);
  io.out(fullName(ref));
}

export interface PushFlags extends RegistryFlags {
  compression?: string;
  ociMediatypes?: boolean;
  quiet?: boolean;
}

/** Pushes a stored image under `target`, printing docker push's lines; returns the manifest digest. */
export async function pushStored(store: Store, source: string, target: ImageReference, flags: PushFlags & { compressionLevel?: number }, io: Io): Promise<Digest> {
  const compression = (flags.compression ?? 'gzip') as Compression;
  if (!['gzip', 'zstd', 'uncompressed'].includes(compression)) throw new UsageError(`invalid --compression "${flags.compression}": gzip, zstd or uncompressed`);
  const say = flags.quiet ? () => undefined : io.out;
  say(`The push refers to repository [${familiarName({ ...target, tag: undefined, digest: undefined })}]`);
  const result = await pushStoredImage(store, source, target, {
    registry: registryOptions(flags),
    compression,
    compressionLevel: flags.compressionLevel,
    ociMediaTypes: flags.ociMediatypes,
    onLayer: (d, what) => say(`${d.slice(7, 19)}: ${what}`),
  });
  say(`${target.tag}: digest: ${result.digest} size: ${result.size}`);
  return result.digest;
}

/** `tsbuild push NAME [REF]`: the image NAME pushed as NAME, or as REF. */
export async function pushCommand(store: Store, name: string, target: string | undefined, flags: PushFlags, io: Io): Promise<void> {
  await pushStored(store, name, parseReference(target ?? name), flags, io);
}

/** `tsbuild tag SRC DST`: another name for a stored image. */
export async function tagCommand(store: Store, source: string, target: string): Promise<void> {
  const ref = parseReference(target);
  if (ref.digest) throw new UsageError(`refusing to create a tag with a digest reference: ${target}`);
  await tagImage(store, getImage(store, source).id, fullName(ref));
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the password from standard input: ${(err as Error).message}`);
  }
}

/** `tsbuild login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checked against the registry, then saved where docker login saves it. */
export async function loginCommand(server: string | undefined, flags: RegistryFlags & { username?: string; password?: string; passwordStdin?: boolean }, io: Io): Promise<void> {
  const domain = registryDomain(server);
  if (flags.password !== undefined && flags.passwordStdin) throw new UsageError('--password and --password-stdin are mutually exclusive');
  const password = flags.passwordStdin ? readStdin().replace(/\r?\n$/, '') : flags.password;
  if (!flags.username || password === undefined || password === '') throw new UsageError('tsbuild login needs --username and --password (or --password-stdin): it does not prompt');
  if (flags.password !== undefined) io.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
  const credentials = { username: flags.username, password };
  // the registry itself, never a mirror: the credentials are the registry's
  await new RegistryRepository(domain, 'library/tsbuild-login-check', { ...registryOptions(flags), mirrors: [], credentials }, 'pull').checkLogin();
  await saveCredentials(domain, credentials);
  io.out('Login Succeeded');
}

/** `tsbuild logout [SERVER]`. */
export async function logoutCommand(server: string | undefined, io: Io): Promise<void> {
  const domain = registryDomain(server);
  const removed = await removeCredentials(domain);
  io.out(removed ? `Removing login credentials for ${domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain}` : `Not logged in to ${domain}`);
}

/** A registry as login names it: `localhost:5000`, `https://ghcr.io`, or Docker Hub by default. */
function registryDomain(server: string | undefined): string {
  if (!server) return 'docker.io';
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (!host) throw new UsageError(`invalid registry "${server}"`);
  return ['index.docker.io', 'registry-1.docker.io'].includes(host) ? 'docker.io' : host;
}

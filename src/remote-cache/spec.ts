// --cache-to and --cache-from as BuildKit's CSV attributes: type=registry|local|inline, ref=, dest=, src=, mode=, tag=.
import { splitCsv } from '../archive/output-spec.js';
import { UsageError } from '../errors.js';
import { parseReference } from '../image/reference.js';
import type { RegistryOptions } from '../registry/hosts.js';

export type CacheExportSpec =
  | { type: 'registry'; ref: string; mode: 'min' | 'max'; ignoreError: boolean; insecure?: boolean }
  | { type: 'local'; dest: string; tag: string; mode: 'min' | 'max'; ignoreError: boolean }
  | { type: 'inline' };

export type CacheImportSpec = { type: 'registry'; ref: string; insecure?: boolean } | { type: 'local'; src: string; tag: string; digest?: string };

/** `registry.insecure=true`: plain HTTP or unverified TLS for the ref's registry, as --insecure-registry. */
function insecure(attrs: Map<string, string>): { insecure?: true } {
  return attrs.get('registry.insecure') === 'true' ? { insecure: true } : {};
}

function attributes(flag: string, value: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid ${flag} "${value}": "${field}" is not KEY=VALUE`);
    attrs.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1));
  }
  if (!attrs.has('type')) throw new UsageError(`invalid ${flag} "${value}": type= is required (registry, local or inline)`);
  return attrs;
}

function known(flag: string, value: string, attrs: Map<string, string>, allowed: string[]): void {
  for (const k of attrs.keys()) {
    if (!allowed.includes(k)) throw new UsageError(`invalid ${flag} "${value}": unknown attribute "${k}" for type=${attrs.get('type')}`);
  }
}

function mode(flag: string, value: string, attrs: Map<string, string>): 'min' | 'max' {
  const m = attrs.get('mode') ?? 'min';
  if (m !== 'min' && m !== 'max') throw new UsageError(`invalid ${flag} "${value}": mode must be min or max`);
  return m;
}

/** Attributes BuildKit takes that change nothing here (tsbuild's cache is always OCI, gzip, image-manifest). */
const ACCEPTED = ['oci-mediatypes', 'image-manifest', 'compression', 'compression-level', 'force-compression'];

/** `--cache-to`: `type=registry,ref=REF[,mode=max]`, `type=local,dest=DIR[,tag=T]`, `type=inline`, or a bare REF. */
export function parseCacheExport(value: string): CacheExportSpec {
  const flag = '--cache-to';
  if (!value.includes('=')) return { type: 'registry', ref: refOf(flag, value), mode: 'min', ignoreError: false };
  const attrs = attributes(flag, value);
  const ignoreError = attrs.get('ignore-error') === 'true';
  switch (attrs.get('type')) {
    case 'registry': {
      known(flag, value, attrs, ['type', 'ref', 'mode', 'ignore-error', 'registry.insecure', ...ACCEPTED]);
      const ref = attrs.get('ref');
      if (!ref) throw new UsageError(`invalid ${flag} "${value}": type=registry needs ref=REF`);
      return { type: 'registry', ref: refOf(flag, ref), mode: mode(flag, value, attrs), ignoreError, ...insecure(attrs) };
    }
    case 'local': {
      known(flag, value, attrs, ['type', 'dest', 'tag', 'mode', 'ignore-error', ...ACCEPTED]);
      const dest = attrs.get('dest');
      if (!dest) throw new UsageError(`invalid ${flag} "${value}": type=local needs dest=DIR`);
      return { type: 'local', dest, tag: attrs.get('tag') || 'latest', mode: mode(flag, value, attrs), ignoreError };
    }
    case 'inline':
      known(flag, value, attrs, ['type', 'mode']);
      return { type: 'inline' };
    default:
      throw new UsageError(`invalid ${flag} "${value}": cache type "${attrs.get('type')}" is not supported (registry, local, inline)`);
  }
}

/** `--cache-from`: `type=registry,ref=REF`, `type=local,src=DIR[,tag=T|digest=D]`, or a bare REF. */
export function parseCacheImport(value: string): CacheImportSpec {
  const flag = '--cache-from';
  if (!value.includes('=')) return { type: 'registry', ref: refOf(flag, value) };
  const attrs = attributes(flag, value);
  switch (attrs.get('type')) {
    case 'registry': {
      known(flag, value, attrs, ['type', 'ref', 'registry.insecure']);
      const ref = attrs.get('ref');
      if (!ref) throw new UsageError(`invalid ${flag} "${value}": type=registry needs ref=REF`);
      return { type: 'registry', ref: refOf(flag, ref), ...insecure(attrs) };
    }
    case 'local': {
      known(flag, value, attrs, ['type', 'src', 'tag', 'digest']);
      const src = attrs.get('src');
      if (!src) throw new UsageError(`invalid ${flag} "${value}": type=local needs src=DIR`);
      const digest = attrs.get('digest');
      return { type: 'local', src, tag: attrs.get('tag') || 'latest', ...(digest ? { digest } : {}) };
    }
    default:
      throw new UsageError(`invalid ${flag} "${value}": cache type "${attrs.get('type')}" is not supported (registry, local)`);
  }
}

function refOf(flag: string, ref: string): string {
  try {
    parseReference(ref);
  } catch (err) {
    throw new UsageError(`invalid ${flag} ref: ${(err as Error).message}`);
  }
  return ref;
}

/** The registry options with `domain` added to the insecure registries when the cache spec says so. */
export function withInsecure(registry: RegistryOptions, domain: string, insecure: boolean | undefined): RegistryOptions {
  return insecure ? { ...registry, insecureRegistries: [...(registry.insecureRegistries ?? []), domain] } : registry;
}

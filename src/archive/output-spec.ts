// `-o`'s forms: a plain file, or BuildKit's type=docker|oci,dest=...,compression=... CSV.
import { UsageError } from '../errors.js';

export type Compression = { algorithm: 'gzip'; level: number } | undefined;

/** Where `-o` sends the built image, and in which form. */
export interface OutputSpec {
  /** docker: docker-archive (manifest.json) that is also an OCI layout; oci: the OCI layout alone. */
  type: 'docker' | 'oci';
  /** A file, or '-' for standard output. */
  dest: string;
  /** Layer compression; undefined leaves layers uncompressed, as `docker save` does. */
  compression: Compression;
  /** Names for the archive instead of the -t tags. */
  names?: string[];
  /** The manifest's and layers' media types: BuildKit's type=docker writes Docker's unless oci-mediatypes=true. */
  mediaTypes: 'oci' | 'docker';
}

/** `-o type=registry,name=REF` (or `type=image,name=REF,push=true`): the image pushed, as BuildKit's image exporter does. */
export interface RegistryOutput {
  type: 'registry';
  names: string[];
  compression: 'gzip' | 'zstd' | 'uncompressed';
  level?: number;
  mediaTypes: 'oci' | 'docker';
}

/** gzip's default level, as BuildKit uses it. */
const DEFAULT_GZIP_LEVEL = 6;

/** Splits one CSV record as Go's encoding/csv does for BuildKit's flags: "a=1","b=x,y" keeps commas in quotes. */
export function splitCsv(value: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let startOfField = true;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      if (c === '"' && value[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
        if (i + 1 < value.length && value[i + 1] !== ',') throw new UsageError(`invalid -o "${value}": text after a closing "`);
      } else field += c;
    } else if (c === '"' && startOfField) {
      quoted = true;
      startOfField = false;
    } else if (c === '"') {
      throw new UsageError(`invalid -o "${value}": a " may only open a field ("dest=a b.tar" quotes a whole field)`);
    } else if (c === ',') {
      fields.push(field);
      field = '';
      startOfField = true;
    } else {
      field += c;
      startOfField = false;
    }
  }
  if (quoted) throw new UsageError(`invalid -o "${value}": unterminated quote`);
  fields.push(field);
  return fields;
}

const bool = (spec: string, key: string, v: string) => {
  if (['true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw new UsageError(`invalid -o "${spec}": ${key} must be true or false, not "${v}"`);
};

/**
 * Parses `-o`: either a plain path (a docker-archive + OCI tarball with uncompressed layers, as
 * `docker save` writes), or BuildKit's form `type=docker|oci,dest=PATH[,compression=gzip|uncompressed]
 * [,compression-level=0-9][,force-compression=BOOL][,name=NAME][,oci-mediatypes=BOOL]`, whose layers
 * are gzip-compressed unless it says otherwise, and whose media types are Docker's for type=docker
 * and OCI's for type=oci unless oci-mediatypes says otherwise, as BuildKit's are.
 */
export function parseOutputSpec(value: string): OutputSpec | RegistryOutput {
  if (!value.includes('=')) {
    if (value === '') throw new UsageError('invalid -o "": expected a file name or type=docker|oci,dest=FILE');
    return { type: 'docker', dest: value, compression: undefined, mediaTypes: 'oci' }; // as docker save writes since Docker 25
  }
  const attrs = new Map<string, string>();
  for (const field of splitCsv(value)) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid -o "${value}": "${field}" is not KEY=VALUE`);
    attrs.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1));
  }
  const type = attrs.get('type');
  if (type === undefined) throw new UsageError(`invalid -o "${value}": type= is required (docker or oci)`);
  if (type === 'registry' || type === 'image') return registryOutput(value, type, attrs);
  if (['local', 'tar', 'cacheonly'].includes(type)) {
    throw new UsageError(`-o type=${type} is not supported yet (supported: docker, oci, registry)`);
  }
  if (type !== 'docker' && type !== 'oci') throw new UsageError(`invalid -o "${value}": unknown output type "${type}"`);
  const dest = attrs.get('dest');
  if (!dest) throw new UsageError(`-o type=${type} needs dest=FILE (or dest=- for standard output): there is no Docker daemon to load it into`);

  let algorithm = 'gzip';
  let ociMediaTypes = type === 'oci';
  let level: number | undefined;
  let names: string[] | undefined;
  for (const [key, v] of attrs) {
    switch (key) {
      case 'type':
      case 'dest':
        break;
      case 'compression':
        if (v === 'zstd' || v === 'estargz') throw new UsageError(`-o compression=${v} is not supported yet (supported: gzip, uncompressed)`);
        if (v !== 'gzip' && v !== 'uncompressed') throw new UsageError(`invalid -o "${value}": unknown compression "${v}"`);
        algorithm = v;
        break;
      case 'compression-level':
        level = Number(v);
        if (!/^\d$/.test(v)) throw new UsageError(`invalid -o "${value}": compression-level must be 0 to 9 for gzip`);
        break;
      case 'force-compression':
        bool(value, key, v); // layers are stored uncompressed: every compressed one is made for the output
        break;
      case 'oci-mediatypes':
        ociMediaTypes = bool(value, key, v);
        break;
      case 'tar':
        if (!bool(value, key, v)) throw new UsageError('-o tar=false (an OCI layout directory) is not supported yet');
        break;
      case 'name':
        names = v.split(',').filter((n) => n !== '');
        break;
      default:
        throw new UsageError(`invalid -o "${value}": unknown attribute "${key}" for type=${type}`);
    }
  }
  if (level !== undefined && algorithm === 'uncompressed') throw new UsageError(`invalid -o "${value}": compression-level needs compression=gzip`);
  const compression: Compression = algorithm === 'gzip' ? { algorithm: 'gzip', level: level ?? DEFAULT_GZIP_LEVEL } : undefined;
  return { type, dest, compression, mediaTypes: ociMediaTypes ? 'oci' : 'docker', ...(names ? { names } : {}) };
}

/** BuildKit's image exporter attributes: name=, push=, compression=gzip|zstd|uncompressed, compression-level=, oci-mediatypes=. */
function registryOutput(value: string, type: string, attrs: Map<string, string>): RegistryOutput {
  let names: string[] = [];
  let compression: RegistryOutput['compression'] = 'gzip';
  let level: number | undefined;
  let oci = false;
  let push = type === 'registry';
  for (const [key, v] of attrs) {
    switch (key) {
      case 'type':
        break;
      case 'name':
        names = v.split(',').filter((n) => n !== '');
        break;
      case 'push':
        push = bool(value, key, v);
        break;
      case 'compression':
        if (v !== 'gzip' && v !== 'zstd' && v !== 'uncompressed') throw new UsageError(`invalid -o "${value}": unknown compression "${v}" (gzip, zstd or uncompressed)`);
        compression = v;
        break;
      case 'compression-level':
        level = Number(v);
        if (!/^\d{1,2}$/.test(v)) throw new UsageError(`invalid -o "${value}": compression-level must be a number`);
        break;
      case 'oci-mediatypes':
        oci = bool(value, key, v);
        break;
      case 'force-compression':
        bool(value, key, v);
        break;
      default:
        throw new UsageError(`invalid -o "${value}": unknown attribute "${key}" for type=${type}`);
    }
  }
  if (!push) throw new UsageError(`-o type=image without push=true would only name the image in a daemon's store: use -t, or push=true`);
  if (names.length === 0) throw new UsageError(`-o type=${type} needs name=REF (the repository and tag to push to)`);
  return { type: 'registry', names, compression, ...(level !== undefined ? { level } : {}), mediaTypes: oci || compression === 'zstd' ? 'oci' : 'docker' };
}

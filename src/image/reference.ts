// Image references, normalised as Docker does.
import { UsageError } from '../errors.js';

/**
 * An image reference normalised as Docker does: `busybox` is `docker.io/library/busybox:latest`,
 * `me/app:1` is `docker.io/me/app:1`, `localhost:5000/x` keeps its registry.
 */
export interface ImageReference {
  domain: string;
  /** Repository path without the domain, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseReference(input: string): ImageReference {
  const bad = (why: string) => new UsageError(`invalid reference format: "${input}": ${why}`);
  if (input === '' || input.length > 255) throw bad('empty or too long');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('invalid digest');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad('invalid tag');
  }
  let domain = DEFAULT_DOMAIN;
  let repoPath = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first;
      repoPath = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !repoPath.includes('/')) repoPath = `library/${repoPath}`;
  const parts = repoPath.split('/');
  if (parts.some((p) => !COMPONENT.test(p))) {
    throw bad(repoPath !== repoPath.toLowerCase() ? 'repository name must be lowercase' : 'invalid repository name');
  }
  if (!tag && !digest) tag = 'latest';
  return { domain, path: repoPath, tag, digest };
}

/** `docker.io/library/busybox:latest` */
export function fullName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The repository as Docker prints it: `busybox`, `me/app`, `localhost:5000/x`. */
export function familiarRepository(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path;
}

/** `busybox:latest`, as `docker images` and manifest.json RepoTags show it. */
export function familiarName(ref: ImageReference): string {
  return `${familiarRepository(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

export function normalizeName(input: string): string {
  return fullName(parseReference(input));
}

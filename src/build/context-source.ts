import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { globToRegex } from '../dockerfile/dockerignore.js';
import { components, hostTree, resolveComponents } from '../fs/resolve.js';

export class ContextSourceError extends Error {}

export interface ContextSource {
  /** Path relative to the context root, symlinks resolved. */
  rel: string;
  host: string;
  stat: Stats;
}

const GLOB = /[*?[]/;

/**
 * Resolves a COPY source inside the build context. A source that leaves the context (`../x`, or a
 * symlink pointing above the context or to an absolute path) is an error, as is one that does not
 * exist or that .dockerignore excludes. Wildcards match context entries as Go's filepath.Match does.
 */
export function resolveContextSources(contextDir: string, src: string, ignore: IgnoreMatcher): ContextSource[] {
  const normal = path.posix.normalize(src);
  if (normal === '..' || normal.startsWith('../')) {
    throw new ContextSourceError(`forbidden path outside the build context: ${src}`);
  }
  const rel = components(normal).join('/');
  if (GLOB.test(rel)) return globSources(contextDir, rel, ignore, src);
  const resolvedRel = resolveInContext(contextDir, rel, src);
  if (ignore.excludes(resolvedRel)) throw new ContextSourceError(`"${src}" not found: excluded by .dockerignore`);
  let stat: Stats;
  try {
    stat = lstatSync(path.join(contextDir, resolvedRel));
  } catch {
    throw new ContextSourceError(`"${src}" not found in the build context (${contextDir})`);
  }
  return [{ rel: resolvedRel, host: path.join(contextDir, resolvedRel), stat }];
}

/** Follows symlinks component by component; never lets the path leave the context. */
function resolveInContext(contextDir: string, rel: string, shown: string): string {
  const refuse = (why: 'dotdot' | 'absolute', target?: string): never => {
    throw new ContextSourceError(`forbidden path outside the build context: ${shown}${why === 'absolute' ? ` is a symlink to ${target}` : ''}`);
  };
  return resolveComponents(rel, hostTree(contextDir, refuse)).join('/');
}

function globSources(contextDir: string, pattern: string, ignore: IgnoreMatcher, shown: string): ContextSource[] {
  const parts = pattern.split('/');
  const out: ContextSource[] = [];
  const walk = (relDir: string, i: number) => {
    const re = globToRegex(parts[i]!);
    let names: string[];
    try {
      names = readdirSync(path.join(contextDir, relDir)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (!re.test(name)) continue;
      const rel = relDir ? `${relDir}/${name}` : name;
      if (ignore.excludes(rel)) continue;
      const host = path.join(contextDir, rel);
      const stat = lstatSync(host);
      if (i === parts.length - 1) out.push({ rel, host, stat });
      else if (stat.isDirectory()) walk(rel, i + 1);
    }
  };
  walk('', 0);
  if (out.length === 0) throw new ContextSourceError(`no source files were specified: nothing in the build context matches "${shown}"`);
  return out;
}

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';

/** One path of a flattened image: what the differential tests compare. */
export interface FlatEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of a regular file's content. */
  digest?: string;
  linkname?: string;
  /** For a hard-linked file: every path of its inode in the image, sorted. */
  hardlinks?: string;
}

export interface FlatImage {
  files: Map<string, FlatEntry>;
  config: Record<string, unknown>;
}

const clean = (p: string) => p.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');

/**
 * Flattens a `docker save` or tsbuild tarball: applies its layers in order (whiteouts and opaque
 * directories included) into a path → entry map. It reads tars with node-tar, independently of
 * tsbuild's own reader, so a bug there cannot hide itself.
 */
export async function flattenArchive(archive: string, workDir: string): Promise<FlatImage> {
  mkdirSync(workDir, { recursive: true });
  await tar.x({ file: archive, cwd: workDir, preservePaths: false });
  const [manifest] = JSON.parse(readFileSync(path.join(workDir, 'manifest.json'), 'utf8')) as Array<{ Config: string; Layers: string[] }>;
  const config = JSON.parse(readFileSync(path.join(workDir, manifest!.Config), 'utf8')) as Record<string, unknown>;
  const files = new Map<string, FlatEntry>();
  // hard-link groups: a path leaves its group when it is replaced or deleted
  const groups = new Map<string, Set<string>>();
  const unlink = (p: string) => {
    groups.get(p)?.delete(p);
    groups.delete(p);
  };
  const removeUnder = (dir: string, keepFrom?: Set<string>) => {
    for (const p of [...files.keys()]) {
      if (p.startsWith(`${dir}/`) && !keepFrom?.has(p)) {
        files.delete(p);
        unlink(p);
      }
    }
  };
  for (const layer of manifest!.Layers) {
    const entries: Array<{ path: string; entry: FlatEntry; link?: string }> = [];
    const pending: Array<Promise<void>> = [];
    await tar.t({
      file: path.join(workDir, layer),
      onReadEntry: (e) => {
        const p = clean(e.path);
        const item = { path: p, entry: { type: String(e.type), mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0 } as FlatEntry, link: e.type === 'Link' ? clean(e.linkpath ?? '') : undefined };
        if (e.type === 'SymbolicLink') item.entry.linkname = e.linkpath;
        if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
          item.entry.type = 'File';
          const hash = createHash('sha256');
          e.on('data', (c: Buffer) => hash.update(c));
          pending.push(new Promise((resolve) => e.on('end', () => {
            item.entry.digest = hash.digest('hex');
            resolve();
          })));
        } else e.resume();
        entries.push(item);
      },
    });
    await Promise.all(pending);
    const added = new Set(entries.map((e) => e.path));
    for (const { path: p } of entries) {
      const base = path.posix.basename(p);
      const dir = path.posix.dirname(p) === '.' ? '' : path.posix.dirname(p);
      if (base === '.wh..wh..opq') removeUnder(dir, added);
      else if (base.startsWith('.wh.')) {
        const gone = dir ? `${dir}/${base.slice(4)}` : base.slice(4);
        files.delete(gone);
        unlink(gone);
        removeUnder(gone);
      }
    }
    for (const { path: p, entry, link } of entries) {
      if (p === '' || path.posix.basename(p).startsWith('.wh.')) continue;
      const before = files.get(p);
      if (before && before.type === 'Directory' && entry.type !== 'Directory') removeUnder(p);
      unlink(p);
      if (link !== undefined) {
        const group = groups.get(link) ?? new Set([link]);
        group.add(p);
        for (const member of group) groups.set(member, group);
      }
      files.set(p, link !== undefined ? { ...(files.get(link) ?? entry), type: 'File' } : entry);
    }
  }
  for (const [p, group] of groups) if (group.size > 1 && files.has(p)) files.get(p)!.hardlinks = [...group].sort().join(' ');
  return { files, config };
}

export const CONFIG_KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'];

function norm(v: unknown): string {
  if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0)) return 'null';
  if (typeof v === 'object' && !Array.isArray(v)) {
    return JSON.stringify(Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => a.localeCompare(b))));
  }
  return JSON.stringify(v);
}

/** Differences between two flattened images, as readable lines (empty when equivalent). */
export function compareImages(ref: FlatImage, ours: FlatImage, ignorePaths: RegExp[] = [], ignoreConfig: string[] = []): string[] {
  const diffs: string[] = [];
  const ignored = (p: string) => ignorePaths.some((r) => r.test(p));
  for (const [p, a] of ref.files) {
    if (ignored(p)) continue;
    const b = ours.files.get(p);
    if (!b) {
      diffs.push(`missing in tsbuild: ${p} (${a.type})`);
      continue;
    }
    for (const k of ['type', 'mode', 'uid', 'gid', 'digest', 'linkname', 'hardlinks'] as const) {
      if (a[k] !== b[k]) diffs.push(`${p}: ${k} ${JSON.stringify(a[k])} (docker) != ${JSON.stringify(b[k])} (tsbuild)`);
    }
  }
  for (const p of ours.files.keys()) if (!ref.files.has(p) && !ignored(p)) diffs.push(`extra in tsbuild: ${p}`);
  const ca = (ref.config.config ?? {}) as Record<string, unknown>;
  const cb = (ours.config.config ?? {}) as Record<string, unknown>;
  for (const k of CONFIG_KEYS) {
    if (ignoreConfig.includes(k)) continue;
    if (norm(ca[k]) !== norm(cb[k])) diffs.push(`config ${k}: ${norm(ca[k])} (docker) != ${norm(cb[k])} (tsbuild)`);
  }
  return diffs;
}

// The hygiene checks of COPY and ADD that read what they copy: key-like files, ADD of a plain file.
import { closeSync, openSync, readSync } from 'node:fs';
import type { CopyInstruction } from '../../dockerfile/instructions.js';
import { addNotArchiveMessage, keyLikeKind, secretFilesMessage } from '../../check/hygiene/context-files.js';
import { RULES } from '../../check/rules.js';
import type { Linter } from '../../check/linter.js';
import { archiveKind } from '../add-sources.js';
import type { ContextTree, SourceEntry } from '../source-tree.js';

const HEAD = 4096;

/** Up to `bytes` first bytes of a file (the key rules read no more of a candidate). */
export function fileHead(file: string, bytes = HEAD): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    closeSync(fd);
  }
}

/** A key-like file a COPY takes: its path as copied, and what it is. */
export interface KeyFile {
  path: string;
  kind: string;
}

/**
 * SecretFileCopied and AddNotArchive for a COPY or ADD from the context. `lines` are the sources
 * list its cache key hashed (content-hash.ts: a line per path, named as copied), so that the
 * context is not walked a second time; only files whose names look like keys are read. `known`:
 * what the step's last build of the same sources found (its step record keeps it), so that a
 * rebuild of 100,000 unchanged files does not scan their names again. Returns what it found.
 */
export async function copyHygiene(
  linter: Linter,
  ins: CopyInstruction,
  tree: ContextTree,
  local: readonly SourceEntry[],
  lines: readonly string[],
  known?: readonly KeyFile[],
): Promise<KeyFile[]> {
  const found = known ? [...known] : keyFilesIn(lines, tree, local);
  if (found.length > 0) linter.warn(RULES.SecretFileCopied, secretFilesMessage(ins, found), ins.location);
  if (ins.keyword === 'ADD' && ins.unpack !== true && local.length > 0 && local.length === ins.sources.length && local.every((e) => e.stat.isFile())) {
    let archives = 0;
    for (const e of local) if ((await archiveKind(tree.hostPath(e.comps))) !== undefined) archives++;
    if (archives === 0) linter.warn(RULES.AddNotArchive, addNotArchiveMessage(local.map((e) => e.name)), ins.location);
  }
  return found;
}

/** The key-like files of a sources list: names first (no file read), then the few candidates' first bytes. */
function keyFilesIn(lines: readonly string[], tree: ContextTree, local: readonly SourceEntry[]): KeyFile[] {
  const found: KeyFile[] = [];
  const hostPathOf = (rel: string) => {
    const e = local.find((l) => rel === l.name || rel.startsWith(`${l.name}/`));
    return e ? tree.hostPath([...e.comps, ...rel.slice(e.name.length).split('/').filter(Boolean)]) : undefined;
  };
  for (const chunk of lines) {
    for (let at = 0; at < chunk.length; ) {
      let end = chunk.indexOf('\n', at);
      if (end < 0) end = chunk.length;
      const nul = chunk.indexOf('\0', at);
      if (nul > at && nul < end && chunk.charCodeAt(nul + 1) === 102 /* f */) {
        const rel = chunk.slice(at, nul);
        const kind = keyLikeKind(rel, () => {
          const file = hostPathOf(rel);
          return file ? fileHead(file) : Buffer.alloc(0);
        });
        if (kind) found.push({ path: rel.replace(/^\.?\//, ''), kind });
      }
      at = end + 1;
    }
  }
  return found;
}

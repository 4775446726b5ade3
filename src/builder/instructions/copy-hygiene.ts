// The hygiene checks of COPY and ADD that read what they copy: key-like files, ADD of a plain file.
import { closeSync, openSync, readSync } from 'node:fs';
import type { CopyInstruction } from '../../dockerfile/instructions.js';
import { addNotArchiveMessage, keyLikeKind, secretFilesMessage } from '../../check/hygiene/context-files.js';
import { RULES } from '../../check/rules.js';
import type { Linter } from '../../check/linter.js';
import { archiveKind } from '../add-sources.js';
import type { ContextTree, SourceEntry } from '../source-tree.js';

const HEAD = 4096;

function head(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(HEAD);
    return buf.subarray(0, readSync(fd, buf, 0, HEAD, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    closeSync(fd);
  }
}

/**
 * SecretFileCopied and AddNotArchive for a COPY or ADD from the context. `lines` are the sources
 * list its cache key hashed (content-hash.ts: a line per path, named as copied), so that the
 * context is not walked a second time; only files whose names look like keys are read.
 */
export async function copyHygiene(linter: Linter, ins: CopyInstruction, tree: ContextTree, local: readonly SourceEntry[], lines: readonly string[]): Promise<void> {
  const found: Array<{ path: string; kind: string }> = [];
  const hostPathOf = (rel: string) => {
    const e = local.find((l) => rel === l.name || rel.startsWith(`${l.name}/`));
    return e ? tree.hostPath([...e.comps, ...rel.slice(e.name.length).split('/').filter(Boolean)]) : undefined;
  };
  for (const chunk of lines) {
    for (const line of chunk.split('\n')) {
      const nul = line.indexOf('\0');
      if (nul < 0 || line[nul + 1] !== 'f') continue;
      const rel = line.slice(0, nul);
      const kind = keyLikeKind(rel, () => {
        const file = hostPathOf(rel);
        return file ? head(file) : Buffer.alloc(0);
      });
      if (kind) found.push({ path: rel.replace(/^\.?\//, ''), kind });
    }
  }
  if (found.length > 0) linter.warn(RULES.SecretFileCopied, secretFilesMessage(ins, found), ins.location);
  if (ins.keyword !== 'ADD' || ins.unpack === true || local.length === 0 || local.length !== ins.sources.length) return;
  if (local.some((e) => !e.stat.isFile())) return;
  for (const e of local) if ((await archiveKind(tree.hostPath(e.comps))) !== undefined) return;
  linter.warn(RULES.AddNotArchive, addNotArchiveMessage(local.map((e) => e.name)), ins.location);
}

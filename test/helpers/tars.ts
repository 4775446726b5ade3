// Layer tars built in code, entry by entry.
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarEntry } from '../../src/layer/tar-format.js';

export type CraftedEntry = TarEntry & { content?: string | Buffer };

/** A tar of these entries, each with its content (the size is the content's). */
export function craftTar(entries: CraftedEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const content = Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? '');
    parts.push(encodeHeader({ ...e, size: content.length }), content, paddingFor(content.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export const file = (p: string, content: string | Buffer = 'x'): CraftedEntry & { content: string | Buffer } => ({ path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, content });
export const dir = (p: string, mode = 0o755): TarEntry => ({ path: p, type: 'dir', mode, uid: 0, gid: 0, size: 0, mtime: 7 });

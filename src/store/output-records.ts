// What tsbuild last wrote to each -o file, so an unchanged one is left alone.
import { statSync } from 'node:fs';
import path from 'node:path';
import { readJsonIfAny, writeFileAtomic } from './atomic.js';
import type { Store } from './store.js';

interface OutputRecord {
  /** What was written: the images and names, which determine every byte (archives are deterministic). */
  key: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

function recordsFile(store: Store): string {
  return path.join(store.root, 'outputs.json');
}

function read(store: Store): Record<string, OutputRecord> {
  return readJsonIfAny<Record<string, OutputRecord>>(recordsFile(store)) ?? {};
}

/**
 * Whether `file` still holds exactly the archive `key` describes, as tsbuild last wrote it there
 * (same size, mtime and inode): then a rebuild need not write it again, as make would not.
 */
export function outputUnchanged(store: Store, file: string, key: string): boolean {
  const rec = read(store)[path.resolve(file)];
  if (!rec || rec.key !== key) return false;
  try {
    const st = statSync(file);
    return st.size === rec.size && st.mtimeMs === rec.mtimeMs && st.ino === rec.ino;
  } catch {
    return false;
  }
}

export function recordOutput(store: Store, file: string, key: string): void {
  const st = statSync(file);
  const all = read(store);
  all[path.resolve(file)] = { key, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  writeFileAtomic(recordsFile(store), JSON.stringify(all), 0o644, false);
}

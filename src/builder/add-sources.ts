// ADD's own sources: URLs downloaded (with --checksum) and local archives unpacked.
import { closeSync, createReadStream, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import { applyLayer } from '../layer/apply.js';
import { decompressed } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
import { DigestCounter } from '../util/digest.js';
import { FileSink } from '../util/sink.js';
import { ContextTree, SourceError } from './source-tree.js';

/** What ADD makes of a source that is a URL: a downloaded file. */
export interface Download {
  file: string;
  name: string;
  size: number;
  mtime: number;
  digest: string;
}

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

/**
 * ADD <url>: downloads into the step's temp dir, streaming, checking `--checksum` when given. The
 * file is named after the URL's last path component, as BuildKit names it.
 */
export async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<Download> {
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    throw new SourceError(`failed to download ${url}: ${(err as Error).message}`);
  }
  if (!response.ok || !response.body) throw new SourceError(`failed to download ${url}: HTTP ${response.status} ${response.statusText}`);
  const base = path.posix.basename(new URL(url).pathname);
  const name = base && base !== '/' && base !== '.' ? base : '__unnamed__';
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `download-${name}`);
  const sink = new FileSink(file, 'w', 0o600);
  const counter = new DigestCounter();
  try {
    for await (const chunk of Readable.fromWeb(response.body as never)) {
      counter.update(chunk as Buffer);
      await sink.write(chunk as Buffer);
    }
  } finally {
    await sink.close();
  }
  const digest = counter.digest();
  if (checksum && checksum !== digest) throw new SourceError(`digest mismatch for ${url}: expected ${checksum}, got ${digest}`);
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  return { file, name, size: counter.size, mtime: Number.isNaN(modified) ? 0 : Math.floor(modified / 1000), digest };
}

const MAGIC: Array<[string, Buffer]> = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['bzip2', Buffer.from('BZh')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];

function head(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** A tar header block: its checksum field matches the sum of its bytes. */
function looksLikeTar(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored;
}

/** How a local file would be unpacked by ADD: undefined when it is not a (compressed) tar. */
export async function archiveKind(file: string): Promise<string | undefined> {
  if (statSync(file).size === 0) return undefined;
  const start = head(file, 512);
  for (const [kind, magic] of MAGIC) {
    if (start.subarray(0, magic.length).equals(magic)) {
      const block = await firstBytes(decompressStream(file, kind), 512);
      return looksLikeTar(block) ? kind : undefined;
    }
  }
  return looksLikeTar(start) ? 'tar' : undefined;
}

async function firstBytes(source: AsyncIterable<Buffer>, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const c of source) {
      chunks.push(c);
      have += c.length;
      if (have >= n) break;
    }
  } catch {
    // a corrupt stream is simply not an archive
  }
  return Buffer.concat(chunks).subarray(0, n);
}

async function* decompressStream(file: string, kind: string): AsyncIterable<Buffer> {
  if (kind === 'gzip' || kind === 'tar') {
    yield* decompressed(createReadStream(file));
    return;
  }
  const tool = kind === 'bzip2' ? 'bzip2' : 'xz';
  const { execa } = await import('execa'); // loaded only when needed: it costs every command's start-up
  const child = execa(tool, ['-dc', file], { stdout: 'pipe', stderr: 'ignore', buffer: false, reject: false });
  yield* child.stdout as AsyncIterable<Buffer>;
}

/**
 * Unpacks a local archive (tar, gzip, bzip2, xz) for ADD into a temp dir, safely (no entry leaves
 * it), and returns a tree over the result whose entries keep the archive's owners and modes.
 */
export async function unpackArchive(file: string, kind: string, dir: string): Promise<ContextTree> {
  mkdirSync(dir, { recursive: true });
  await applyLayer(readTar(decompressStream(file, kind)), dir);
  return new ContextTree(dir, new IgnoreMatcher([]));
}

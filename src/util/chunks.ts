// Streams of chunks regrouped: small ones joined, so that each step downstream takes fewer, bigger calls.
/** Joins small chunks (a socket's 64 KiB) into about `size` bytes: fewer, bigger calls into zlib. */
export async function* coalesced(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of source) {
    parts.push(c);
    have += c.length;
    if (have >= size) {
      yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
      parts = [];
      have = 0;
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}


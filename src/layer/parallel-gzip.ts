// gzip on every core, off the main thread, in pigz's scheme.
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import type { ByteSink } from '../util/sink.js';

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

/** Input is cut into blocks this big, each deflated on its own thread-pool job. */
const BLOCK = 1 << 20;
/** Deflate's window: each block is primed with the end of the block before it, as pigz does. */
const WINDOW = 32 * 1024;

/**
 * Deflate jobs queued or running at once, across every ParallelGzip of the process: twice the
 * thread pool (UV_THREADPOOL_SIZE, which bin/tsbuild.cjs sets to the number of cores), so every
 * thread has the next block ready and memory stays bounded however many layers compress at once.
 */
const MAX_JOBS = 2 * (Number(process.env.UV_THREADPOOL_SIZE) || 4);
let running = 0;
const waiting: Array<() => void> = [];

async function takeJobSlot(): Promise<void> {
  while (running >= MAX_JOBS) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
}

function releaseJobSlot(): void {
  running--;
  waiting.shift()?.();
}

/** What determines ParallelGzip's bytes for a given input and level. */
export const PARALLEL_GZIP_ENCODER = `zlib ${process.versions.zlib}, ${BLOCK}-byte blocks`;

/**
 * gzip with every core: the stream is cut into 1 MiB blocks, each deflated as a raw deflate job on
 * libuv's thread pool (primed with the previous block's last 32 KiB, ending on a byte boundary with
 * a sync flush), and the results are written in order, between one gzip header and trailer, as
 * pigz does. The output is a single ordinary gzip member, the same bytes for the same input and
 * level whatever the scheduling. Memory: at most MAX_JOBS blocks in and out per instance, and
 * MAX_JOBS deflating in all.
 */
export class ParallelGzip implements ByteSink {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private previousTail: Buffer | undefined;
  private readonly jobs: Array<Promise<Buffer>> = [];
  private crc = 0;
  private size = 0;
  private started = false;

  constructor(
    private readonly out: ByteSink,
    private readonly level: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (!this.started) await this.header();
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingSize += chunk.length;
    while (this.pendingSize >= BLOCK) {
      const all = Buffer.concat(this.pending, this.pendingSize);
      const rest = all.subarray(BLOCK);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingSize = rest.length;
      while (this.jobs.length >= MAX_JOBS) await this.emitOldest();
      await this.dispatch(all.subarray(0, BLOCK), false);
    }
  }

  /** Compresses what is left and writes the trailer (CRC-32 and size mod 2^32, little-endian). */
  async end(): Promise<void> {
    if (!this.started) await this.header();
    const last = Buffer.concat(this.pending, this.pendingSize);
    this.pending = [];
    await this.dispatch(last, true);
    while (this.jobs.length > 0) await this.emitOldest();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.size % 2 ** 32, 4);
    await this.out.write(trailer);
  }

  private async header(): Promise<void> {
    this.started = true;
    // magic, deflate, no flags, no mtime, XFL as gzip sets it for the level, OS = Unix
    const xfl = this.level === 9 ? 2 : this.level === 1 ? 4 : 0;
    await this.out.write(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]));
  }

  private async dispatch(block: Buffer, last: boolean): Promise<void> {
    // an output buffer a block fits in (deflate can grow incompressible data a little): one trip back to this thread
    const options: ZlibOptions = { level: this.level, chunkSize: BLOCK + 64 * 1024, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
    if (this.previousTail) options.dictionary = this.previousTail;
    // a copy, so that the whole block need not stay in memory until the next one is dispatched
    this.previousTail = Buffer.from(block.subarray(Math.max(0, block.length - WINDOW)));
    await takeJobSlot();
    const job = deflateRawAsync(block, options).finally(releaseJobSlot);
    job.catch(() => undefined); // awaited in order by emitOldest; this only stops an unhandled rejection
    this.jobs.push(job);
  }

  private async emitOldest(): Promise<void> {
    const data = await this.jobs.shift()!;
    if (data.length > 0) await this.out.write(data);
  }
}

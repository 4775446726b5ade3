// zstd: the streaming encoder for pushed layers and the decoder for pulled ones, over zstd-napi loaded on first use.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { IntegrityError, TsbuildError } from '../errors.js';
import { put, type ByteSink } from '../util/sink.js';

type Zstd = typeof ZstdBinding;

/**
 * What determines ZstdEncoder's bytes for a given input and level: the library (zstd-napi vendors
 * zstd, so its version fixes zstd's), zstd's multithreaded mode (one frame, cut into jobs the same
 * way for any number of workers, so the same bytes on every machine) and the frame's checksum.
 * Checked against the loaded library when it loads.
 */
export const ZSTD_ENCODER = 'zstd 1.5.7 (zstd-napi 0.0.13), multithreaded mode, checksum';

/**
 * Workers compressing for one encoder (threads zstd starts itself), at most: more bring speed, and
 * memory (at level 3, about 55 MiB with one worker and 15 MiB more for each other).
 */
const MAX_WORKERS = 4;

/** Output buffers are filled in slices: a fresh one is taken when less than this is left of the last. */
const MIN_OUT_SPACE = 32 * 1024;

let loaded: Zstd | undefined;

/**
 * The native library, loaded on first use, not when this module is: most commands never see zstd,
 * and every command's start-up would pay for it. Through require, which a bundle leaves alone.
 */
function zstd(): Zstd {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let lib: Zstd;
  let version: string;
  try {
    lib = require('zstd-napi/binding.js') as Zstd;
    version = (require('zstd-napi/package.json') as { version: string }).version;
  } catch (err) {
    throw new TsbuildError(`cannot load zstd (the zstd-napi package, built by 'npm install'): ${(err as Error).message}`, { cause: err });
  }
  const found = `zstd ${lib.versionString()} (zstd-napi ${version})`;
  if (!ZSTD_ENCODER.startsWith(`${found},`)) {
    throw new TsbuildError(`zstd-napi gives ${found}, but ZSTD_ENCODER says '${ZSTD_ENCODER}': update ZSTD_ENCODER with the dependency`);
  }
  loaded = lib;
  return lib;
}

/** Hands out slices of a buffer for output, so that nothing handed on is ever written again. */
class OutputSpace {
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;

  constructor(private readonly size: number) {}

  /** Room to write into (at least MIN_OUT_SPACE, or `size` when this one is used up). */
  room(): Buffer {
    if (this.buf.length - this.used < MIN_OUT_SPACE) {
      this.buf = Buffer.allocUnsafe(this.size);
      this.used = 0;
    }
    return this.buf.subarray(this.used);
  }

  /** The first `n` bytes of the last room, now the caller's. */
  take(n: number): Buffer {
    const out = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }
}

/**
 * zstd compression as a byte sink: what is written is compressed into a single zstd frame (with
 * its checksum) and handed to `next`, waiting whenever `next` asks to. zstd's own worker threads do
 * the compressing (multithreaded mode), so the main thread only hands input over and output on; it
 * waits in zstd only when every worker is busy. Memory stays bounded: zstd's job buffers (see
 * MAX_WORKERS) and one output buffer. `end` must be called to finish the frame.
 */
export class ZstdEncoder implements ByteSink {
  private readonly lib: Zstd;
  private cctx: ZstdBinding.CCtx | undefined;
  private readonly space: OutputSpace;

  constructor(
    private readonly next: ByteSink,
    level = 3,
  ) {
    this.lib = zstd();
    const { CCtx, CParameter } = this.lib;
    this.cctx = new CCtx();
    this.cctx.setParameter(CParameter.compressionLevel, level);
    this.cctx.setParameter(CParameter.checksumFlag, 1);
    // any count of workers gives the same bytes (but none, zstd's single-threaded mode, others)
    this.cctx.setParameter(CParameter.nbWorkers, Math.max(1, Math.min(MAX_WORKERS, availableParallelism())));
    this.space = new OutputSpace(this.lib.cStreamOutSize());
  }

  async write(chunk: Buffer): Promise<void> {
    // never an empty first call: zstd would take an end with nothing before it as a small input and drop to single-threaded mode
    if (chunk.length > 0) await this.compress(chunk, this.lib.EndDirective.continue);
  }

  /** Finishes the frame and hands on the rest; the encoder can take nothing after. */
  async end(): Promise<void> {
    await this.compress(Buffer.alloc(0), this.lib.EndDirective.end);
    this.cctx = undefined; // zstd's threads and buffers go with it, when collected
  }

  private async compress(input: Buffer, directive: ZstdBinding.EndDirective): Promise<void> {
    if (!this.cctx) throw new Error('ZstdEncoder: written to after end()');
    let src = input;
    for (;;) {
      const [left, produced, consumed] = this.cctx.compressStream2(this.space.room(), src, directive);
      src = src.subarray(consumed);
      if (produced > 0) await put(this.next, this.space.take(produced));
      // continue: done when all input is in zstd's hands; end: when the frame is finished and all out
      if (src.length === 0 && (directive === this.lib.EndDirective.continue || left === 0)) return;
    }
  }
}

/**
 * Decompresses a zstd stream: one frame or several one after the other (skippable frames are
 * skipped), yielding the output as it is asked for, so memory stays bounded by zstd's window (at
 * most 128 MiB, zstd's default limit; layers use 2 MiB at level 3) and one output buffer, however
 * big the input or however well it compresses. Damaged or truncated data raises IntegrityError;
 * failures of `source` itself pass through as they are.
 */
export async function* zstdDecompressed(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const lib = zstd();
  const dctx = new lib.DCtx();
  const space = new OutputSpace(lib.dStreamOutSize());
  /** Whether zstd is inside a frame: its calls answer 0 when one is done and all of it out. */
  let inFrame = false;
  for await (const chunk of source) {
    let src = chunk;
    for (;;) {
      const room = space.room();
      let left: number, produced: number, consumed: number;
      try {
        [left, produced, consumed] = dctx.decompressStream(room, src);
      } catch (err) {
        throw zstdError(err as Error);
      }
      src = src.subarray(consumed);
      // (a call that did nothing says how much a next frame's header needs, even between frames)
      if (consumed > 0 || produced > 0) inFrame = left !== 0;
      if (produced > 0) yield space.take(produced);
      // all input taken, and the frame done or room left over: nothing more to give until more comes
      if (src.length === 0 && (left === 0 || produced < room.length)) break;
    }
  }
  if (inFrame) throw new IntegrityError('corrupt zstd data: truncated (the stream ends inside a frame)');
}

function zstdError(err: Error): TsbuildError {
  // zstd's refusal of a frame that asks for more memory than its limit is not damage
  if (/too much memory/i.test(err.message)) {
    return new TsbuildError(`zstd data needs a window over zstd's default limit of 128 MiB (made with --long?): ${err.message}`, { cause: err });
  }
  return new IntegrityError(`corrupt zstd data: ${err.message}`, { cause: err });
}

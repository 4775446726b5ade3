// Bounding how much runs at once: a semaphore and a bounded forEach.
/** At most `n` tasks at a time. */
export class Semaphore {
  private waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Runs `task` for every item, at most `n` at once; fails with the first failure, after all settle. */
export async function forEachLimited<T>(items: readonly T[], n: number, task: (item: T) => Promise<void>): Promise<void> {
  const slots = new Semaphore(Math.max(1, n));
  const results = await Promise.allSettled(items.map((item) => slots.run(() => task(item))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

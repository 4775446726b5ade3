// The build's temp space, made when a step first needs it: a fully cached build makes none.
import { mkdirSync, rm } from 'node:fs';
import path from 'node:path';
import { writeEtcFiles } from '../sandbox/etc-files.js';
import type { Store } from '../store/store.js';

export class BuildTemp {
  private dir?: string;
  private etc?: Record<string, string>;
  private readonly removing = new Set<Promise<void>>();

  constructor(private readonly store: Store) {}

  /** A fresh directory inside the build's temp dir. */
  subdir(name: string): string {
    this.dir ??= this.store.makeTemp('build');
    const dir = path.join(this.dir, name);
    mkdirSync(dir);
    return dir;
  }

  /** Host files bind-mounted over /etc/hosts, /etc/hostname and /etc/resolv.conf during RUN, written once. */
  etcFiles(): Record<string, string> {
    return (this.etc ??= writeEtcFiles(this.subdir('etc')));
  }

  /**
   * Removes a directory subdir() made, on libuv's threads: a step's dir (its init layer, overlay
   * work dir, mount point) takes a dozen slow rmdirs that the next step need not wait for.
   */
  release(dir: string): void {
    // (node:fs's callback form: node:fs/promises costs every start 3 ms to load)
    const done: Promise<void> = new Promise<void>((resolve) => rm(dir, { recursive: true, force: true }, () => resolve())) // what is left goes with the build's dir, or with the next command's sweep
      .finally(() => this.removing.delete(done));
    this.removing.add(done);
  }

  /** Removes whatever was made, once the releases under way are done; safe to call more than once. */
  async remove(): Promise<void> {
    await Promise.all(this.removing);
    if (this.dir) this.store.removeTemp(this.dir);
    this.dir = undefined;
    this.etc = undefined;
  }
}

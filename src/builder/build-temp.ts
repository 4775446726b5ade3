// The build's temp space, made when a step first needs it: a fully cached build makes none.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeEtcFiles } from '../sandbox/etc-files.js';
import type { Store } from '../store/store.js';

export class BuildTemp {
  private dir?: string;
  private etc?: Record<string, string>;

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

  /** Removes whatever was made; safe to call more than once. */
  remove(): void {
    if (this.dir) this.store.removeTemp(this.dir);
    this.dir = undefined;
    this.etc = undefined;
  }
}

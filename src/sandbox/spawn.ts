// Starting the sandbox helper without fork's cost: every RUN step starts one, and Node's spawn
// forks (copying the page tables of a heap of 60 to 100 MB: 3 to 5 ms a process on this machine,
// with the event loop stopped). The addon's posix_spawn does not copy them, and runs on a libuv
// thread. Exits are seen on SIGCHLD, and on a slow timer in case one is missed.
import type * as Net from 'node:net';
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
import { native } from '../native/index.js';

/** What the child's descriptor i is: /dev/null, tsbuild's own, or a pipe the child writes. */
export type StdioSpec = 'ignore' | 'inherit' | 'from-child';

export interface Exit {
  /** The exit status, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** node:net, loaded by the first spawn: a fully cached build starts none, and need not load it. */
let net: typeof Net | undefined;

export interface Spawned {
  pid: number;
  /** By descriptor: the parent's (readable) end of each 'from-child' pipe. */
  stdio: Array<Net.Socket | undefined>;
  exited: Promise<Exit>;
  /** Sends a signal while the process runs (never to a reaped pid, which may be another's by now). */
  kill(signal?: NodeJS.Signals): void;
}

const running = new Map<number, (exit: Exit) => void>();
let timer: NodeJS.Timeout | undefined;
let listening = false;

function signalName(n: number): NodeJS.Signals | null {
  return (Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined) ?? null;
}

function reapAll(): void {
  for (const [pid, done] of running) {
    const r = native().reap(pid);
    if (!r) continue;
    running.delete(pid);
    done({ code: r[0] >= 0 ? r[0] : null, signal: r[1] > 0 ? signalName(r[1]) : null });
  }
  if (running.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

/**
 * Starts `file` (a path, or a name looked up in PATH) with these arguments and environment, its
 * descriptors as `stdio` says. Rejects, where Node's spawn emits 'error', when the file cannot run.
 */
export async function spawnProcess(file: string, args: readonly string[], opts: { env: NodeJS.ProcessEnv; stdio: readonly StdioSpec[] }): Promise<Spawned> {
  const childFds: number[] = [];
  const parentEnds: Array<number | undefined> = [];
  const toClose: number[] = [];
  try {
    for (const [i, how] of opts.stdio.entries()) {
      if (how === 'inherit') {
        childFds.push(i);
        parentEnds.push(undefined);
      } else if (how === 'ignore') {
        const fd = openSync('/dev/null', i === 0 ? 'r' : 'w');
        toClose.push(fd);
        childFds.push(fd);
        parentEnds.push(undefined);
      } else {
        const [r, w] = native().pipe();
        toClose.push(w);
        childFds.push(w);
        parentEnds.push(r);
      }
    }
    const env = Object.entries(opts.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    if (!listening) {
      process.on('SIGCHLD', reapAll); // libuv's own handler reaps only Node's children, by pid
      listening = true;
    }
    const pid = await native().spawn(file, [file, ...args], env, childFds);
    const exited = new Promise<Exit>((resolve) => running.set(pid, resolve));
    reapAll(); // it may have ended before it was in `running`
    timer ??= setInterval(reapAll, 500);
    net ??= createRequire(import.meta.url)('node:net') as typeof Net;
    const stdio = parentEnds.map((fd) => {
      if (fd === undefined) return undefined;
      const socket = new net!.Socket({ fd, readable: true, writable: false });
      socket.on('error', () => undefined); // a pipe's error is its end, as the exit says
      return socket;
    });
    return {
      pid,
      stdio,
      exited,
      kill(signal: NodeJS.Signals = 'SIGTERM') {
        if (running.has(pid)) process.kill(pid, signal);
      },
    };
  } catch (err) {
    for (const fd of parentEnds) if (fd !== undefined) closeSync(fd);
    throw err;
  } finally {
    for (const fd of toClose) closeSync(fd);
  }
}

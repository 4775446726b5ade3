// Starting the sandbox helper, slirp4netns and their kin without fork's cost: every RUN step starts
// one to three processes, and Node's spawn forks (copying the page tables of a heap of 60 to 100 MB:
// 3 to 5 ms a process on this machine, with the event loop stopped). The addon's posix_spawn does
// not copy them, and runs on a libuv thread. Exits are seen on SIGCHLD, and on a slow timer in
// case one is missed.
import type * as Net from 'node:net';
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
import { native } from '../native/index.js';

/** What the child's descriptor i is: /dev/null, tsbuild's own, or a pipe the child reads or writes. */
export type StdioSpec = 'ignore' | 'inherit' | 'to-child' | 'from-child';

export interface Exit {
  /** The exit status, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** node:net, loaded by the first spawn: a fully cached build starts none, and need not load it. */
let net: typeof Net | undefined;

export interface Spawned {
  pid: number;
  /** By descriptor: the parent's end of each pipe (readable for 'from-child', writable for 'to-child'). */
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
  const parentEnds: Array<{ fd: number; readable: boolean } | undefined> = [];
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
        const [childEnd, parentEnd] = how === 'to-child' ? [r, w] : [w, r];
        toClose.push(childEnd);
        childFds.push(childEnd);
        parentEnds.push({ fd: parentEnd, readable: how === 'from-child' });
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
    const stdio = parentEnds.map((end) => {
      if (!end) return undefined;
      const socket = new net!.Socket({ fd: end.fd, readable: end.readable, writable: !end.readable });
      socket.on('error', () => undefined); // a pipe's error (EPIPE to a dead child) is its end, as the exit says
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
    for (const end of parentEnds) if (end) closeSync(end.fd);
    throw err;
  } finally {
    for (const fd of toClose) closeSync(fd);
  }
}

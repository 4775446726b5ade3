// RUN --mount=type=ssh: the user's ssh agent (or one holding the keys given) forwarded into a step through a socket of its own.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { UsageError } from '../errors.js';

/** A forwarded agent: the socket to bind into the step, and how to stop forwarding when it ends. */
export interface ForwardedAgent {
  socket: string;
  close(): Promise<void>;
}

/** `--ssh default`, `--ssh ID=SOCKET`, `--ssh ID=KEY[,KEY...]`, as `docker buildx build --ssh`. */
export function parseSsh(list: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const id = eq < 0 ? item : item.slice(0, eq);
    const paths = eq < 0 ? [] : item.slice(eq + 1).split(',').filter(Boolean);
    if (!id) throw new UsageError(`invalid --ssh "${item}": expected default, ID=SOCKET or ID=KEY[,KEY]`);
    if (paths.length === 0) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (!sock) throw new UsageError(`invalid --ssh "${item}": SSH_AUTH_SOCK is not set (start ssh-agent, or give ID=SOCKET or ID=KEY)`);
      paths.push(sock);
    }
    for (const p of paths) if (!existsSync(p)) throw new UsageError(`invalid --ssh "${item}": ${p}: no such file or socket`);
    out[id] = paths.map((p) => path.resolve(p));
  }
  return out;
}

function waitFor(file: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (existsSync(file)) resolve();
      else if (Date.now() > deadline) reject(new Error(`${file} did not appear`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(err) : reject(new Error(err.trim().split('\n')[0] || `${cmd} exited ${code}`))));
  });
}

/** An ssh-agent of our own holding the given key files (they never enter the step). */
async function agentWithKeys(keys: readonly string[], dir: string): Promise<{ socket: string; stop: () => void }> {
  const socket = path.join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => agent.on('error', (e) => reject(new UsageError(`--ssh with key files needs ssh-agent: ${e.message}`))));
  const stop = () => agent.kill();
  try {
    await Promise.race([waitFor(socket, 10_000), failed]);
    for (const key of keys) await run('ssh-add', ['-q', key], { ...process.env, SSH_AUTH_SOCK: socket });
  } catch (err) {
    stop();
    throw err instanceof UsageError ? err : new UsageError(`--ssh: cannot load ${keys.join(', ')} into an agent: ${(err as Error).message}`);
  }
  return { socket, stop };
}

/**
 * Forwards an agent into a step: a socket in `dir`, owned and moded as the mount asks (BuildKit's
 * uid, gid, mode; default root, 0600), whose every connection is piped to the agent. The agent is
 * the one at `paths[0]` when that is a socket, else one tsbuild starts holding the key files.
 */
export async function forwardAgent(paths: readonly string[], dir: string, owner: { uid: number; gid: number; mode: number }): Promise<ForwardedAgent> {
  const own = paths.length === 1 && statSync(paths[0]!).isSocket() ? undefined : await agentWithKeys(paths, dir);
  const upstream = own?.socket ?? paths[0]!;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    const up = net.connect(upstream);
    sockets.add(conn).add(up);
    const done = () => {
      conn.destroy();
      up.destroy();
      sockets.delete(conn);
      sockets.delete(up);
    };
    conn.on('error', done).on('close', done);
    up.on('error', done).on('close', done);
    conn.pipe(up).pipe(conn);
  });
  const socket = path.join(dir, 'ssh.sock');
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
  chownSync(socket, owner.uid, owner.gid);
  chmodSync(socket, owner.mode);
  return {
    socket,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      own?.stop();
    },
  };
}

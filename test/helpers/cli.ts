import { execa } from 'execa';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/tsbuild.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the tsbuild command line, as a user would, against a store root. */
export async function tsbuild(root: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: { TSBUILD_ROOT: root, ...opts.env },
    reject: false,
    timeout: 300_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Like tsbuild() but fails the test with the output when the command fails. */
export async function ok(root: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const r = await tsbuild(root, args, opts);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
}

export const BIN_PATH = BIN;

/** PIDs of the processes whose command line holds `text` (a helper's name, one of its arguments). */
export function processesRunning(text: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    });
}

/** PIDs of the processes that are in a namespace (`net:[4026532...]`, as readlink gives it) or hold a descriptor of it. */
export function namespaceHolders(ns: string): string[] {
  const links = (dir: string) => {
    try {
      return readdirSync(dir).map((n) => `${dir}/${n}`);
    } catch {
      return [];
    }
  };
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) =>
      [...links(`/proc/${p}/ns`), ...links(`/proc/${p}/fd`)].some((l) => {
        try {
          return readlinkSync(l) === ns;
        } catch {
          return false;
        }
      }),
    );
}

/** Mount points under a directory, from this process's view (the host's). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** What a clean store looks like after any command: no temp dirs, nothing mounted. */
export function storeLeftovers(root: string): string[] {
  let temps: string[] = [];
  try {
    temps = readdirSync(path.join(root, 'tmp')).map((t) => `tmp/${t}`);
  } catch {
    temps = [];
  }
  return [...temps, ...mountsUnder(root).map((m) => `mount ${m}`)];
}

/** Builds a Dockerfile and returns a reader over the top layer's files (as stored, in overlay form). */
export async function buildTop(root: string, contextDir: string, args: string[] = []): Promise<(p: string) => string> {
  const r = await ok(root, ['-q', ...args, contextDir]);
  const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
  const top = image.Layers.at(-1);
  // a COPY layer may still be a blob only: ask for it through a RUN-less read of the saved image
  return (p) => readFileSync(path.join(root, 'layers', top.ChainID.slice(7), 'diff', p), 'utf8');
}

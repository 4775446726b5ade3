// `tsbuild run IMAGE [CMD...]`: a command in an image of the store, in the sandbox RUN steps use.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { TsbuildError, UsageError } from '../errors.js';
import { RootfsView, type LayerFiles } from '../fs/rootfs-view.js';
import { envGet, envSet } from '../image/config.js';
import { canMountImages, imageMountFailed } from '../overlay/erofs-support.js';
import { makeInitLayer } from '../overlay/init-layer.js';
import { stepRootfs } from '../overlay/mounts.js';
import { sandboxNetwork, writeEtcFiles } from '../sandbox/etc-files.js';
import { runInSandbox } from '../sandbox/run.js';
import { closeStepNetworks, stepNetworkUnavailable } from '../sandbox/network-pool.js';
import { resolveUser } from '../sandbox/user.js';
import { getImage } from '../store/stored-image.js';
import type { Store } from '../store/store.js';

export interface RunImageOptions {
  /** The command: replaces the image's CMD (its ENTRYPOINT stays, as with docker run). */
  command?: string[];
  /** --entrypoint: replaces the image's ENTRYPOINT. */
  entrypoint?: string;
  /** -e KEY=VALUE (or KEY: tsbuild's own value), over the image's ENV. */
  env?: string[];
  /** -w: the working directory (default the image's). */
  workdir?: string;
  /** -u: the user (default the image's). */
  user?: string;
  /** --network: default (a network of its own, outbound only), none or host. */
  network?: 'default' | 'none' | 'host';
}

/**
 * Runs a command in a stored image, as a RUN step of a build on it would run: the same overlay
 * of its layers over a fresh upper dir (thrown away afterwards: tsbuild keeps no containers),
 * namespaces, /etc files and network; standard input, output and error are tsbuild's own, so a
 * shell is interactive on a terminal. Returns the command's exit code.
 */
export async function runImage(store: Store, name: string, opts: RunImageOptions = {}): Promise<number> {
  try {
    return await store.inUse(() => runLocked(store, name, opts));
  } finally {
    closeStepNetworks(); // the namespace the pool made ahead for a next command that will not come
  }
}

async function runLocked(store: Store, name: string, opts: RunImageOptions): Promise<number> {
  const img = getImage(store, name);
  const config = img.config.config;
  const argv = [...(opts.entrypoint !== undefined ? (opts.entrypoint ? [opts.entrypoint] : []) : (config.Entrypoint ?? [])), ...(opts.command?.length ? opts.command : (config.Cmd ?? []))];
  if (argv.length === 0) throw new UsageError(`${name} has no CMD or ENTRYPOINT: give the command to run (tsbuild run ${name} CMD...)`);
  for (let attempt = 0; ; attempt++) {
    const dir = store.makeTemp('run');
    try {
      const images = canMountImages();
      const files: LayerFiles[] = [];
      for (const l of img.layers) files.push(await store.layers.files(l.chainId, dir, images));
      const view = new RootfsView(files.reverse());
      let user;
      try {
        user = resolveUser(opts.user ?? config.User, (p) => view.readFile(p));
      } catch (err) {
        throw new UsageError((err as Error).message, { cause: err });
      }
      let env = [...(config.Env ?? [])];
      if (envGet(env, 'HOME') === undefined) env = envSet(env, 'HOME', user.home);
      for (const e of opts.env ?? []) {
        const eq = e.indexOf('=');
        const value = eq < 0 ? process.env[e] : e.slice(eq + 1);
        if (value !== undefined) env = envSet(env, eq < 0 ? e : e.slice(0, eq), value);
      }
      const initDir = path.join(dir, 'init');
      const bindable = makeInitLayer(initDir, view);
      const etcDir = path.join(dir, 'etc');
      mkdirSync(etcDir);
      const mode = opts.network ?? 'default';
      const { network, binds } = sandboxNetwork(mode, mode === 'default' && !stepNetworkUnavailable(), writeEtcFiles(etcDir), bindable);
      const rootfs = stepRootfs(store.layers, img.layers, initDir, dir);
      const result = await runInSandbox({
        rootfs,
        stepDir: dir,
        binds,
        argv,
        env,
        cwd: opts.workdir ?? (config.WorkingDir || '/'),
        user,
        output: process.stdout,
        interactive: true,
        network,
      });
      if (result.setupError?.startsWith('mount erofs image') && rootfs.images.length > 0 && attempt === 0) {
        imageMountFailed(); // this kernel cannot mount the layers' images after all: extracted, and run again
        continue;
      }
      if (result.setupError) throw new TsbuildError(`cannot run ${argv.join(' ')} in ${name}: ${result.setupError}`);
      return result.exitCode;
    } finally {
      store.removeTemp(dir);
    }
  }
}

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, ok, processesRunning, storeLeftovers, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const DOCKER = '/usr/bin/docker';

/** Starts a build and returns once its RUN step is running (and will keep running for a minute). */
async function buildInsideRun(root: string) {
  const child = spawn(process.execPath, [BIN_PATH, context({ Dockerfile: 'FROM busybox\nRUN echo started; sleep 60\n' })], {
    env: { TSBUILD_ROOT: root },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  // the RUN's own line (a failure message quoting the command must not count)
  while (!/^#2 [\d.]+ started$/m.test(err)) {
    if (child.exitCode !== null) throw new Error(`the build ended before its RUN started:\n${err}`);
    await sleep(20);
  }
  return { child, stderr: () => err };
}

describe.skipIf(lacks('root'))('the local store', () => {
  const root = tempDir('store-');
  let rootfsTar: string;

  beforeAll(async () => {
    rootfsTar = busyboxRootfsTar();
    await ok(root, ['import', rootfsTar, 'busybox']);
  });

  it.skipIf(lacks('docker'))('loads what docker save writes, keeping Docker\'s image ID and diffIDs', async () => {
    execFileSync(DOCKER, ['import', rootfsTar, 'tsbuild-test/base:1']);
    const saved = path.join(tempDir(), 'docker-save.tar');
    execFileSync(DOCKER, ['save', 'tsbuild-test/base:1', '-o', saved]);
    const dockerId = execFileSync(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', 'tsbuild-test/base:1'], { encoding: 'utf8' }).trim();
    const r = await ok(root, ['load', saved]);
    expect(r.stdout.trim()).toBe('Loaded image: tsbuild-test/base:1');
    const [img] = JSON.parse((await ok(root, ['inspect', 'tsbuild-test/base:1'])).stdout);
    expect(img.Id).toBe(dockerId);
    const built = await ok(root, ['-q', context({ Dockerfile: 'FROM tsbuild-test/base:1\nRUN echo built > /b\n' })]);
    expect(built.stdout).toMatch(/^sha256:/);
  });

  it.skipIf(lacks('skopeo'))('loads an OCI archive with gzip layers (skopeo)', async () => {
    const work = tempDir();
    await ok(root, ['save', 'busybox', '-o', path.join(work, 'bb.tar')]);
    execFileSync('skopeo', ['copy', '--dest-compress', `docker-archive:${path.join(work, 'bb.tar')}`, `oci-archive:${path.join(work, 'oci.tar')}:other/name:2`]);
    const r = await ok(root, ['load', path.join(work, 'oci.tar')]);
    expect(r.stdout).toContain('Loaded image: other/name:2');
    const [a, b] = JSON.parse((await ok(root, ['inspect', 'busybox', 'other/name:2'])).stdout);
    expect(b.RootFS.Layers).toEqual(a.RootFS.Layers);
  });

  it('mounts an image of 100+ layers', async () => {
    const steps = Array.from({ length: 120 }, (_, i) => `RUN echo ${i} > /layer-${i}`).join('\n');
    const ctx = context({ Dockerfile: `FROM busybox\n${steps}\nRUN ls / | grep -c layer- > /count\n` });
    const r = await ok(root, ['-q', '-t', 'tall', ctx]);
    const [img] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    expect(img.Layers).toHaveLength(122);
    expect(readFileSync(path.join(root, 'layers', img.Layers.at(-1).ChainID.slice(7), 'diff/count'), 'utf8')).toBe('120\n');
  });

  it('rmi keeps layers other images or the build cache use; prune --all removes the rest', async () => {
    const a = JSON.parse((await ok(root, ['inspect', 'tall'])).stdout)[0];
    const r = await ok(root, ['rmi', 'tall']);
    expect(r.stdout).toContain('Untagged: tall:latest');
    expect(r.stdout).toContain(`Deleted: ${a.Id}`);
    expect(existsSync(path.join(root, 'layers', a.Layers[0].ChainID.slice(7)))).toBe(true); // busybox's
    expect(existsSync(path.join(root, 'layers', a.Layers[5].ChainID.slice(7)))).toBe(true); // the build cache's
    expect(existsSync(path.join(root, 'blobs/sha256', a.Id.slice(7)))).toBe(false);
    await ok(root, ['prune', '--all']);
    expect(existsSync(path.join(root, 'layers', a.Layers[5].ChainID.slice(7)))).toBe(false);
    expect(existsSync(path.join(root, 'layers', a.Layers[0].ChainID.slice(7)))).toBe(true); // busybox's
    expect((await ok(root, ['fsck'])).stdout).toMatch(/consistent/);
    const missingImage = await tsbuild(root, ['inspect', 'tall']);
    expect(missingImage.code).not.toBe(0);
    expect(missingImage.stderr.trim()).toMatch(/^tsbuild: image "tall" not found/);
  });

  it('rmi refuses an image others were built on (by name or ID) unless -f, and changes nothing when it refuses', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'base']);
    const [base] = JSON.parse((await ok(local, ['inspect', 'base'])).stdout);
    await ok(local, ['-t', 'meta-child', context({ Dockerfile: 'FROM base\nENV X=1\n' })]); // same layers: a child by record
    const conflict = /^tsbuild: conflict: unable to delete [0-9a-f]{12} \(must be forced\) - image has dependent child images$/;
    for (const name of ['base', base.Id.slice(7, 19)]) {
      const r = await tsbuild(local, ['rmi', name]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(conflict);
      expect((await ok(local, ['images'])).stdout).toMatch(/^base\s+latest/m);
    }
    const forced = await ok(local, ['rmi', '-f', 'base']);
    expect(forced.stdout).toContain(`Deleted: ${base.Id}`);
    // the child keeps every layer it needs
    await ok(local, ['-t', 'grandchild', context({ Dockerfile: 'FROM meta-child\nRUN busybox true\n' })]);
    expect((await ok(local, ['fsck'])).stdout).toMatch(/consistent/);

    // a child that came in a tarball is known by its layers
    const archive = path.join(local, 'grandchild.tar');
    await ok(local, ['save', 'grandchild', '-o', archive]);
    const other = tempDir('store-');
    await ok(other, ['import', rootfsTar, 'base']);
    await ok(other, ['load', archive]);
    expect((await tsbuild(other, ['rmi', 'base'])).stderr.trim()).toMatch(conflict);
    await ok(other, ['rmi', 'grandchild']);
    expect((await ok(other, ['rmi', 'base'])).stdout).toContain('Untagged: base:latest');
  });

  it('system df shows exactly what prune and prune --all then free, and 0B right after', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'busybox']);
    const df = async () => {
      const out = (await ok(local, ['system', 'df'])).stdout;
      const m = /^`prune` would free (\S+); `prune --all` (\S+)$/m.exec(out);
      expect(m, out).not.toBeNull();
      const cache = /^Build Cache +\d+ +\S+ +(\S+) +(\S+)$/m.exec(out);
      return { plain: m![1], all: m![2], cachePlain: cache![1], cacheAll: cache![2] };
    };
    const reclaimed = async (args: string[]) => /^Total reclaimed space: (\S+)$/m.exec((await ok(local, ['prune', ...args])).stdout)![1];
    await ok(local, ['-t', 'a', context({ Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/zero > /a\nRUN head -c 200000 /dev/zero > /b\n' })]);
    await ok(local, ['rmi', 'a']); // its layers stay in the build cache
    // a layer whose cache entry is lost (a crash between the two) is dangling: a plain prune frees it
    const entries = readdirSync(path.join(local, 'cache')).filter((e) => e.endsWith('.json'));
    const lost = entries.find((e) => readFileSync(path.join(local, 'cache', e), 'utf8').includes(readdirSync(path.join(local, 'layers')).find((l) => existsSync(path.join(local, 'layers', l, 'diff/b')))!));
    execFileSync('rm', [path.join(local, 'cache', lost!)]);
    let before = await df();
    expect(before.cachePlain).toBe('0B');
    expect(before.plain).toBe('200kB');
    expect(before.cacheAll).toBe('300kB');
    expect(await reclaimed([])).toBe(before.plain);
    before = await df();
    expect(before.plain).toBe('0B');
    expect(await reclaimed([])).toBe('0B');
    expect(await reclaimed(['--all'])).toBe(before.all);
    expect(await df()).toEqual({ plain: '0B', all: '0B', cachePlain: '0B', cacheAll: '0B' });
  });

  it('prune reads the build cache from its index and image records, trusting neither for a file that changed since', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'busybox']);
    await ok(local, ['-t', 'a', context({ Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/zero > /a\nRUN head -c 200000 /dev/zero > /b\n' })]);
    const cacheDir = path.join(local, 'cache');
    const layerWith = (file: string) => readdirSync(path.join(local, 'layers')).find((l) => existsSync(path.join(local, 'layers', l, 'diff', file)))!;
    const [layerA, layerB] = [layerWith('a'), layerWith('b')];
    const index = () => readFileSync(path.join(cacheDir, 'index.log'), 'utf8').trim().split('\n').sort();
    const entryOf = (layer: string) => readdirSync(cacheDir).find((e) => e.endsWith('.json') && readFileSync(path.join(cacheDir, e), 'utf8').includes(layer))!;
    const entryB = entryOf(layerB);
    // one line per entry written: its key, its file's inode, its layer
    expect(index()).toEqual([entryOf(layerA), entryB].map((e) => `${e.slice(0, -5)} ${statSync(path.join(cacheDir, e)).ino} sha256:${e === entryB ? layerB : layerA}`).sort());
    // images.json names each image's top layer: prune reads no config
    const images = JSON.parse(readFileSync(path.join(local, 'images.json'), 'utf8'));
    const a = JSON.parse((await ok(local, ['inspect', 'a'])).stdout)[0];
    expect(images.images[a.Id].top).toBe(a.Layers.at(-1).ChainID);
    // records written before `top` was kept are read in full, then given it
    for (const r of Object.values<{ top?: string }>(images.images)) delete r.top;
    writeFileSync(path.join(local, 'images.json'), JSON.stringify(images));
    expect(/^Total reclaimed space: (\S+)$/m.exec((await ok(local, ['prune'])).stdout)![1]).toBe('0B');
    expect(JSON.parse(readFileSync(path.join(local, 'images.json'), 'utf8')).images[a.Id].top).toBe(a.Layers.at(-1).ChainID);
    await ok(local, ['rmi', 'a']); // its layers stay, for the build cache
    // B's entry rewritten (a new file) to name layer A, its index line left as it was: B's layer is
    // dangling now, and only a prune that reads the changed file sees it
    const rewritten = path.join(cacheDir, `.${entryB}.new`);
    writeFileSync(rewritten, readFileSync(path.join(cacheDir, entryB), 'utf8').replace(layerB, layerA));
    execFileSync('mv', [rewritten, path.join(cacheDir, entryB)]);
    expect(/^Total reclaimed space: (\S+)$/m.exec((await ok(local, ['prune'])).stdout)![1]).toBe('200kB');
    expect(existsSync(path.join(local, 'layers', layerB))).toBe(false);
    expect(index()).toContain(`${entryB.slice(0, -5)} ${statSync(path.join(cacheDir, entryB)).ino} sha256:${layerA}`);
    // an index lost whole: the files are read, and the index written again
    execFileSync('rm', [path.join(cacheDir, 'index.log')]);
    expect(/^Total reclaimed space: (\S+)$/m.exec((await ok(local, ['prune'])).stdout)![1]).toBe('0B');
    expect(existsSync(path.join(local, 'layers', layerA))).toBe(true);
    expect(index()).toHaveLength(2);
    expect(/^Total reclaimed space: (\S+)$/m.exec((await ok(local, ['prune', '--all'])).stdout)![1]).toBe('300kB');
    expect(readdirSync(cacheDir).filter((e) => e.endsWith('.json'))).toEqual([]);
  });

  it('cache mounts are counted by system df and removed by prune, alone with --filter type=exec.cachemount', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'busybox']);
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c head -c 150000 /dev/zero > /c/blob; ls /c > /seen\n' });
    await ok(local, ['-t', 'cm', ctx]);
    const row = async () => /^Cache Mounts +(\d+) +(\S+) +(\S+) +(\S+)$/m.exec((await ok(local, ['system', 'df'])).stdout)!.slice(1);
    expect(await row()).toEqual(['1', '150kB', '150kB', '150kB']);
    const regular = await ok(local, ['prune', '--filter', 'type=regular']);
    expect(regular.stdout).toContain('cache mounts: 0');
    expect(await row()).toEqual(['1', '150kB', '150kB', '150kB']);
    const mounts = await ok(local, ['prune', '--filter', 'type=exec.cachemount']);
    expect(mounts.stdout).toMatch(/cache mounts: 1$/m);
    expect(mounts.stdout).toMatch(/^Total reclaimed space: 150kB$/m);
    expect(await row()).toEqual(['0', '0B', '0B', '0B']);
    expect(readdirSync(path.join(local, 'cache-mounts'))).toEqual([]);
    const bad = await tsbuild(local, ['prune', '--filter', 'type=nope']);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, 'tsbuild: invalid filter "type=nope": type is exec.cachemount or regular']);
  });

  it('detects a corrupted blob when reading it', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'busybox']);
    const [img] = JSON.parse((await ok(local, ['inspect', 'busybox'])).stdout);
    const blob = path.join(local, 'blobs/sha256', img.RootFS.Layers[0].slice(7));
    execFileSync('sh', ['-c', `printf X | dd of=${blob} bs=1 seek=600 conv=notrunc 2>/dev/null`]);
    const r = await tsbuild(local, ['save', 'busybox', '-o', path.join(local, 'out.tar')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/corrupt/);
    expect(existsSync(path.join(local, 'out.tar'))).toBe(false);
  });

  it('Ctrl-C during RUN stops the step, removes temp space and leaves nothing running', async () => {
    const { child, stderr } = await buildInsideRun(root);
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
    expect({ code, stderr: stderr().trim().split('\n').slice(-2) }).toMatchObject({ code: 130 });
    expect(stderr().trim().split('\n').at(-1)).toBe('tsbuild: interrupted by SIGINT');
    expect(processesRunning('tsbuild-sandbox')).toEqual([]);
    expect(storeLeftovers(root)).toEqual([]);
  });

  it('a build killed with SIGKILL takes its sandbox down, and the next command removes what it left', async () => {
    const { child } = await buildInsideRun(root);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 50 && processesRunning('tsbuild-sandbox').length > 0; i++) await sleep(20);
    expect(processesRunning('tsbuild-sandbox')).toEqual([]);
    expect(storeLeftovers(root).length).toBeGreaterThan(0); // its temp dir, until the next start
    // and what an atomic write killed before its rename would leave (pid 4194303 is not running)
    const half = path.join(root, 'blobs/sha256', `.${'0'.repeat(64)}.tmp-4194303-0badc0de`);
    writeFileSync(half, 'half a blob');
    // a read-only command leaves it alone (and is not slowed by it); the next that writes removes it
    await ok(root, ['images']);
    expect(storeLeftovers(root).length).toBeGreaterThan(0);
    await ok(root, ['prune']);
    expect(storeLeftovers(root)).toEqual([]);
    expect(existsSync(half)).toBe(false);
  });

  it('a second Ctrl-C stops at once, in one line; what it leaves, the next command that writes removes', async () => {
    const child = spawn(process.execPath, [BIN_PATH, context({ Dockerfile: "FROM busybox\nRUN trap '' INT TERM; echo started; sleep 60\n" })], { env: { TSBUILD_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    while (!/^#2 [\d.]+ started$/m.test(err)) await sleep(20);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.kill('SIGINT'); // the step ignores it: tsbuild waits for it to be killed
    await sleep(300);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err.trim().split('\n').at(-1)).toBe('tsbuild: SIGINT again: stopping without cleaning up');
    for (let i = 0; i < 100 && processesRunning('tsbuild-sandbox').length > 0; i++) await sleep(20);
    await ok(root, ['prune']);
    expect(storeLeftovers(root)).toEqual([]);
  });

  it('what a dead command left never fails a read-only command; one that writes removes it, or says in one line why not', async () => {
    const local = tempDir('store-');
    await ok(local, ['import', rootfsTar, 'busybox']);
    const tmp = path.join(local, 'tmp');
    // a dead owner (its lock is free, though its PID is alive: a zombie, or another PID namespace)
    const deadToken = `${process.pid}-0badc0de`;
    writeFileSync(path.join(tmp, `.owner-${deadToken}`), '');
    mkdirSync(path.join(tmp, `build-${deadToken}-0/step-1/mnt`), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'left', path.join(tmp, `build-${deadToken}-0/step-1/mnt`)]);
    writeFileSync(path.join(tmp, `build-${deadToken}-0/step-1/mnt/kept`), 'x');
    mkdirSync(path.join(tmp, `load-${deadToken}-1/deep`), { recursive: true });
    // a live owner: flock(1) holds its lock
    const liveToken = '4194302-0ddba11f';
    writeFileSync(path.join(tmp, `.owner-${liveToken}`), '');
    mkdirSync(path.join(tmp, `build-${liveToken}-0`));
    const holder = spawn('flock', ['-o', path.join(tmp, `.owner-${liveToken}`), 'sleep', '60'], { stdio: 'ignore' }); // -o: flock itself holds it
    try {
      await sleep(200);
      for (const args of [['images'], ['inspect', 'busybox'], ['history', 'busybox'], ['system', 'df']]) {
        const r = await tsbuild(local, args);
        expect([r.code, r.stderr]).toEqual([0, '']);
      }
      expect(readdirSync(tmp).length).toBe(5);
      const built = await tsbuild(local, ['-q', context({ Dockerfile: 'FROM busybox\nRUN true\n' })]);
      expect(built.code).toBe(0);
      expect(built.stderr.trim().split('\n')).toEqual([`tsbuild: warning: cannot remove ${tmp}/build-${deadToken}-0, left by a killed command: something is mounted in it`]);
      expect(readFileSync(path.join(tmp, `build-${deadToken}-0/step-1/mnt/kept`), 'utf8')).toBe('x');
      expect(readdirSync(tmp).sort()).toEqual([`.owner-${deadToken}`, `.owner-${liveToken}`, `build-${deadToken}-0`, `build-${liveToken}-0`].sort());
    } finally {
      execFileSync('umount', [path.join(tmp, `build-${deadToken}-0/step-1/mnt`)]);
      holder.kill();
    }
    await new Promise((resolve) => holder.on('exit', resolve));
    await ok(local, ['prune']);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('fsck finds a changed file in any layer: a RUN layer, a loaded one, a COPY layer extracted for a RUN', async () => {
    const fresh = tempDir('store-');
    await ok(fresh, ['import', busyboxRootfsTar(), 'busybox']);
    const ctx = context({ Dockerfile: 'FROM busybox\nCOPY data.txt /data.txt\nRUN echo ran > /ran\n', 'data.txt': 'data\n' });
    await ok(fresh, ['-t', 'checked', ctx], { env: { TSBUILD_EROFS: '0' } }); // the COPY layer extracted, not kept as an image (erofs.test.ts)
    expect((await ok(fresh, ['fsck'])).stdout).toMatch(/consistent/);
    const [image] = JSON.parse((await ok(fresh, ['inspect', 'checked'])).stdout);
    const diff = (i: number) => path.join(fresh, 'layers', image.Layers[i].ChainID.slice(7), 'diff');
    const cases: Array<[number, string, string]> = [
      [0, 'etc/passwd', 'its extracted files (diff/) no longer match its blob'], // imported
      [1, 'data.txt', 'its extracted files (diff/) no longer match its blob'], // COPY, extracted for the RUN
      [2, 'ran', 'its files no longer give diffID'], // RUN
    ];
    for (const [i, file, message] of cases) {
      const target = path.join(diff(i), file);
      const good = readFileSync(target);
      const st = statSync(target);
      writeFileSync(target, 'tampered\n');
      const r = await tsbuild(fresh, ['fsck']);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain(`layer ${image.Layers[i].ChainID}: ${message}`);
      writeFileSync(target, good);
      utimesSync(target, st.atime, st.mtime);
    }
    expect((await ok(fresh, ['fsck'])).stdout).toMatch(/consistent/);
  });
});

describe.skipIf(lacks('root'))('images lists a store from images.json', () => {
  it('shows the same rows from the recorded summaries as from the images themselves, and an older record gains them', async () => {
    const root = tempDir('store-');
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    await ok(root, ['build', '-q', '-t', 'one', context({ Dockerfile: 'FROM busybox\nRUN head -c 3000000 /dev/zero > /big\n' })]);
    await ok(root, ['build', '-q', '-t', 'two:v2', context({ Dockerfile: 'FROM busybox\nRUN echo two > /two\n' })]);
    const file = path.join(root, 'images.json');
    const index = JSON.parse(readFileSync(file, 'utf8'));
    const records = Object.values(index.images) as Array<{ size?: number; created?: string }>;
    expect(records.every((r) => typeof r.size === 'number' && typeof r.created === 'string')).toBe(true);
    // rows without CREATED, which moves with the clock
    const rows = (out: string) => out.trim().split('\n').map((l) => l.split(/\s{2,}/).filter((_, i) => i !== 3));
    const listed = (await ok(root, ['images'])).stdout;
    expect(listed).toMatch(/^one\s+latest\s+[0-9a-f]{12}\s+.+\s+4\.98MB$/m);
    // as a store written before summaries were kept: the images are read in full, with the same rows
    for (const r of records) {
      delete r.size;
      delete r.created;
    }
    writeFileSync(file, JSON.stringify(index));
    expect(rows((await ok(root, ['images'])).stdout)).toEqual(rows(listed));
    // the next image committed (a cached rebuild under a new name) gives every old record its summary, once
    await ok(root, ['build', '-q', '-t', 'one:again', context({ Dockerfile: 'FROM busybox\nRUN head -c 3000000 /dev/zero > /big\n' })]);
    const after = Object.values(JSON.parse(readFileSync(file, 'utf8')).images) as Array<{ size?: number; created?: string; top?: string }>;
    expect(after).toHaveLength(3);
    expect(after.every((r) => typeof r.size === 'number' && typeof r.top === 'string')).toBe(true);
    expect(rows((await ok(root, ['images'])).stdout).filter((r) => r[1] !== 'again')).toEqual(rows(listed));
  });
});

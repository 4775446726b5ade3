import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ok, storeLeftovers, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';
import { canMountImages } from '../../src/overlay/erofs-support.js';

const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

/**
 * A RUN over a layer that is only a blob (a COPY layer, a loaded or pulled image's) mounts it as an
 * EROFS image instead of extracting it; TSBUILD_EROFS=0 extracts, as before. Both must build the
 * same layers, byte for byte.
 */
describe.skipIf(lacks('root'))('RUN over layers kept as EROFS images', () => {
  const withImages = tempDir('store-erofs-');
  const extracting = tempDir('store-extract-');
  /** Each store's image: its layers' diffIDs and chain IDs. */
  const built: Record<string, { diffIds: string[]; chainIds: string[] }> = {};
  const ctx = context({
    'app/a.txt': 'a\n',
    'app/sub/b.txt': 'b\n',
    'app/del.txt': 'deleted by the RUN\n',
    'app/deep/er/c.txt': 'c\n',
    Dockerfile: [
      'FROM busybox',
      'COPY app /app',
      'RUN cat /app/a.txt /app/sub/b.txt > /out && rm /app/del.txt && rm -r /app/sub && mkdir /app/sub && echo new > /app/sub/new && chmod 600 /app/a.txt',
      'COPY app/a.txt /app/deep/again.txt',
      'RUN find /app | sort > /listing && cat /app/deep/er/c.txt /app/deep/again.txt >> /listing && ls /app/sub >> /listing',
    ].join('\n'),
  });

  beforeAll(async () => {
    const base = busyboxRootfsTar();
    for (const [root, env] of [[withImages, EPOCH], [extracting, { ...EPOCH, TSBUILD_EROFS: '0' }]] as const) {
      await ok(root, ['import', base, 'busybox']);
      await ok(root, ['build', '-q', '-t', 'app', ctx], { env });
      const [image] = JSON.parse((await ok(root, ['inspect', 'app'])).stdout);
      built[root] = { diffIds: image.RootFS.Layers, chainIds: image.Layers.map((l: { ChainID: string }) => l.ChainID) };
    }
  });

  /** The image's COPY layers (FROM, COPY, RUN, COPY, RUN), by their directories in the store. */
  const copyLayers = (root: string) => [1, 3].map((i) => path.join(root, 'layers', built[root]!.chainIds[i]!.slice('sha256:'.length)));

  it('builds the same layers as extracting the layers does', () => {
    expect(canMountImages()).toBe(true);
    expect(built[withImages]!.diffIds).toHaveLength(5);
    expect(built[withImages]!.diffIds).toEqual(built[extracting]!.diffIds);
  });

  it('keeps the COPY layers as images, never extracted, and leaves nothing mounted', () => {
    for (const l of copyLayers(withImages)) {
      expect(existsSync(path.join(l, 'layer.erofs'))).toBe(true);
      expect(existsSync(path.join(l, 'diff'))).toBe(false);
    }
    for (const l of copyLayers(extracting)) {
      expect(existsSync(path.join(l, 'layer.erofs'))).toBe(false);
      expect(existsSync(path.join(l, 'diff'))).toBe(true);
    }
    expect(storeLeftovers(withImages)).toEqual([]);
  });

  it('shows the RUN what the layers hold: deletions, an opaque directory, a mode change', () => {
    const layers = path.join(withImages, 'layers');
    const top = readdirSync(layers).find((l) => existsSync(path.join(layers, l, 'diff', 'listing')))!;
    const listing = readFileSync(path.join(layers, top, 'diff', 'listing'), 'utf8');
    expect(listing).toBe(['/app', '/app/a.txt', '/app/deep', '/app/deep/again.txt', '/app/deep/er', '/app/deep/er/c.txt', '/app/sub', '/app/sub/new', 'c', 'a', 'new', ''].join('\n'));
  });

  it('fsck checks each image against its blob', async () => {
    expect((await ok(withImages, ['fsck'])).stdout).toContain('is consistent');
    const image = path.join(copyLayers(withImages)[0]!, 'layer.erofs');
    const good = readFileSync(image);
    const bad = Buffer.from(good);
    bad[bad.length - 100] ^= 0xff;
    writeFileSync(image, bad);
    const r = await tsbuild(withImages, ['fsck']);
    writeFileSync(image, good);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('its EROFS image (layer.erofs) no longer matches its blob');
  });

  it('removes the image links with the layers', async () => {
    await ok(withImages, ['rmi', 'app']);
    await ok(withImages, ['prune', '--all']);
    const links = readdirSync(path.join(withImages, 'l'));
    for (const l of links) expect(existsSync(path.join(withImages, 'l', l)), `l/${l} points nowhere`).toBe(true);
    expect(links.filter((l) => l.length === 17)).toEqual([]); // l/<16 hex>e: an image's mount point
  });
});

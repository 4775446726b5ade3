import { chmodSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayerPlan } from '../../src/builder/copy-plan.js';
import { ContextTree } from '../../src/builder/source-tree.js';
import { IgnoreMatcher } from '../../src/dockerfile/dockerignore.js';
import { RootfsView } from '../../src/fs/rootfs-view.js';
import { readTar } from '../../src/layer/tar-reader.js';
import { tempDir } from '../helpers/fixtures.js';

/** A context directory built in code: path → content, or a symlink's target after '->', or a hard link after '=>'. */
function tree(files: Record<string, string>): string {
  const dir = tempDir('tree-');
  for (const [p, content] of Object.entries(files)) {
    const file = path.join(dir, p);
    mkdirSync(path.dirname(file), { recursive: true });
    if (content.startsWith('->')) symlinkSync(content.slice(2), file);
    else if (content.startsWith('=>')) linkSync(path.join(dir, content.slice(2)), file);
    else writeFileSync(file, content);
  }
  return dir;
}

/** The planned layer, as its tar lists it: "type path [-> link] mode uid:gid". */
async function entries(plan: LayerPlan): Promise<string[]> {
  const chunks: Buffer[] = [];
  await plan.write({ write: async (b: Buffer) => void chunks.push(Buffer.from(b)) } as never);
  const out: string[] = [];
  for await (const e of readTar((async function* () { yield Buffer.concat(chunks); })())) {
    const link = e.linkname ? ` -> ${e.linkname}` : '';
    out.push(`${e.type} ${e.path}${link} ${e.mode.toString(8)} ${e.uid}:${e.gid}`);
    for await (const _ of e.body()) void _;
  }
  return out;
}

const NOW = 1_700_000_000;

describe('the COPY layer plan', () => {
  it('copies a directory\'s contents in tar order, owned as asked, with parents made; keeps symlinks and hard links', async () => {
    const dir = tree({ 'src/b.txt': 'b', 'src/a.txt': 'a', 'src/sub/c.txt': 'c', 'src/link': '->a.txt', 'src/hard': '=>src/a.txt' });
    chmodSync(path.join(dir, 'src/b.txt'), 0o750);
    const ctx = new ContextTree(dir, new IgnoreMatcher([]));
    const plan = new LayerPlan(new RootfsView([]), NOW);
    const dest = plan.dir('/app/data', { uid: 5, gid: 6, mode: 0o755 });
    plan.addDirContents(dest, ctx, ['src'], { owner: { uid: 5, gid: 6 } });
    expect(await entries(plan)).toEqual([
      'dir app 755 5:6',
      'dir app/data 755 5:6',
      'file app/data/a.txt 644 5:6',
      'file app/data/b.txt 750 5:6',
      'hardlink app/data/hard -> app/data/a.txt 644 5:6',
      'symlink app/data/link -> a.txt 777 5:6',
      'dir app/data/sub 755 5:6',
      'file app/data/sub/c.txt 644 5:6',
    ]);
  });

  it('applies --chmod to everything copied, and .dockerignore with its exceptions', async () => {
    const dir = tree({ 'x.log': 'x', 'keep.log': 'k', 'y.txt': 'y' });
    const ctx = new ContextTree(dir, new IgnoreMatcher(['*.log', '!keep.log']));
    const plan = new LayerPlan(new RootfsView([]), NOW);
    plan.addDirContents(plan.dir('/d', { uid: 0, gid: 0, mode: 0o755 }), ctx, [], { owner: { uid: 0, gid: 0 }, mode: 0o600 });
    expect(await entries(plan)).toEqual(['dir d 755 0:0', 'file d/keep.log 600 0:0', 'file d/y.txt 600 0:0']);
  });

  it('a directory never replaces a file, nor a file a directory, as in BuildKit', () => {
    const dir = tree({ f: 'f', 'd/x': 'x' });
    const ctx = new ContextTree(dir, new IgnoreMatcher([]));
    const plan = new LayerPlan(new RootfsView([]), NOW);
    const root = plan.dir('/', { uid: 0, gid: 0, mode: 0o755 });
    plan.addSource(root, 'f', ctx, ['f'], {}, ctx.lstat(['f'])!);
    expect(() => plan.addSource(root, 'f', ctx, ['d'], {}, ctx.lstat(['d'])!)).toThrow('cannot copy to non-directory: /f');
    plan.addSource(root, 'd', ctx, ['d'], {}, ctx.lstat(['d'])!);
    expect(() => plan.addSource(root, 'd', ctx, ['f'], {}, ctx.lstat(['f'])!)).toThrow('cannot replace to directory /d with file');
  });

  it('clamps mtimes to SOURCE_DATE_EPOCH', async () => {
    const dir = tree({ f: 'f' });
    utimesSync(path.join(dir, 'f'), NOW, NOW);
    const ctx = new ContextTree(dir, new IgnoreMatcher([]));
    const plan = new LayerPlan(new RootfsView([]), NOW, 1000);
    plan.addSource(plan.dir('/', { uid: 0, gid: 0, mode: 0o755 }), 'f', ctx, ['f'], {}, ctx.lstat(['f'])!);
    const chunks: Buffer[] = [];
    await plan.write({ write: async (b: Buffer) => void chunks.push(Buffer.from(b)) } as never);
    const mtimes: number[] = [];
    for await (const e of readTar((async function* () { yield Buffer.concat(chunks); })())) {
      mtimes.push(e.mtime);
      for await (const _ of e.body()) void _;
    }
    expect(mtimes).toEqual([1000]);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { buildTop, ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

// This machine's dockerd (20.10) predates heredocs and COPY --link, so these are checked against
// BuildKit's documented results (docs.docker.com, Dockerfile reference: "Here-Documents").
describe.skipIf(lacks('root'))('heredocs', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('RUN <<EOF runs the document as a shell script, with ARG and ENV', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nARG NAME=world\nENV GREETING=hello\nRUN <<EOF\necho "$GREETING $NAME" > /out\necho second >> /out\nEOF\n' }));
    expect(read('out')).toBe('hello world\nsecond\n');
  });

  it('<<- strips leading tabs; several documents on one line feed one command', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN <<-EOT\n\techo tabs > /tabs\n\tEOT\nRUN cat <<A > /a && cat <<B >> /a\nfirst\nA\nsecond\nB\n' }));
    expect(read('a')).toBe('first\nsecond\n');
  });

  it('a document with #! runs with that interpreter', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN <<EOF\n#!/bin/sh -e\necho "$0" > /interp\nEOF\n' }));
    expect(read('interp')).toBe('/dev/pipes/EOF\n');
  });

  it('COPY <<EOF writes a file; a quoted delimiter keeps $ as written', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nARG NAME=world\nCOPY <<EOF /expanded\nname=$NAME\nEOF\nCOPY <<"EOF" /raw\nname=$NAME\nEOF\nRUN cat /expanded /raw > /both\n' });
    const read = await buildTop(root, ctx);
    expect(read('both')).toBe('name=world\nname=$NAME\n');
  });

  it('an unterminated heredoc is a parse error naming the line', async () => {
    const { tsbuild } = await import('../helpers/cli.js');
    const r = await tsbuild(root, [context({ Dockerfile: 'FROM busybox\nRUN <<EOF\necho never ends\n' })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/Dockerfile:2: unterminated heredoc$/);
  });
});

describe.skipIf(lacks('root'))('COPY --link', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('makes its layer without following the image\'s symlinks or copying its directories up', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN mkdir -m 700 /private && ln -s /private /link\nCOPY --link a.txt /link/x\nRUN ls -ld /link /private > /listing\n', 'a.txt': 'a\n' });
    const read = await buildTop(root, ctx);
    // BuildKit's --link puts /link/x into a layer of its own; merged over the image, /link is
    // that layer's directory (it replaces the symlink) and /private keeps its mode
    expect(read('listing')).toMatch(/^drwxr-xr-x .* \/link$/m);
    expect(read('listing')).toMatch(/^drwx------ .* \/private$/m);
  });
});

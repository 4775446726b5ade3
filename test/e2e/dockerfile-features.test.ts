import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTop, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('Dockerfile features beyond the differential suite', () => {
  const root = tempDir('store-');
  let server: Server;
  let base = '';
  let body = 'downloaded content\n';
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;

  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    server = createServer((req, res) => {
      if (req.url === '/files/remote.txt') {
        res.setHeader('Last-Modified', 'Wed, 01 Jan 2020 00:00:00 GMT');
        res.end(body);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server?.close());

  it('ADD <url> downloads (mode 600, mtime from Last-Modified) and checks --checksum', async () => {
    const ctx = context({ Dockerfile: `FROM busybox\nADD --checksum=${digest} ${base}/files/remote.txt /dl/\nRUN stat -c '%a %Y' /dl/remote.txt > /meta && cat /dl/remote.txt > /content\n` });
    const read = await buildTop(root, ctx);
    expect(read('content')).toBe(body);
    expect(read('meta')).toBe('600 1577836800\n');
    const bad = await tsbuild(root, [context({ Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/remote.txt /x\n` })]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toMatch(/Dockerfile:2: ADD failed: digest mismatch for http:\/\/127\.0\.0\.1:\d+\/files\/remote\.txt/);
    const missingUrl = await tsbuild(root, [context({ Dockerfile: `FROM busybox\nADD ${base}/nope /x\n` })]);
    expect(missingUrl.stderr.trim()).toMatch(/Dockerfile:2: ADD failed: failed to download .*HTTP 404/);
  });

  it('ADD <url> downloads again on a rebuild: new content is a cache miss', async () => {
    const ctx = context({ Dockerfile: `FROM busybox\nADD ${base}/files/remote.txt /r\nRUN cat /r > /seen\n` });
    const first = await buildTop(root, ctx);
    expect(first('seen')).toBe(body);
    const old = body;
    body = 'changed on the server\n';
    try {
      const second = await buildTop(root, ctx);
      expect(second('seen')).toBe('changed on the server\n');
    } finally {
      body = old;
    }
  });

  it('a <Dockerfile>.dockerignore beside a named Dockerfile wins over the context\'s .dockerignore', async () => {
    const ctx = context({
      'build/app.Dockerfile': 'FROM busybox\nCOPY . /ctx\nRUN ls -A /ctx > /listing\n',
      'build/app.Dockerfile.dockerignore': 'secret.txt\n',
      '.dockerignore': 'public.txt\n',
      'secret.txt': 's',
      'public.txt': 'p',
    });
    const read = await buildTop(root, ctx, ['-f', path.join(ctx, 'build/app.Dockerfile')]);
    expect(read('listing')).toBe('.dockerignore\nbuild\npublic.txt\n');
  });

  it('prints BuildKit\'s warnings without failing, at the end as buildx does', async () => {
    const r = await ok(root, ['--progress=plain', context({ Dockerfile: 'FROM ${NOPE:-busybox}\nCMD echo shell form\nRUN echo a \\\n\n  b\n' })]);
    const summary = r.stderr.slice(r.stderr.indexOf('\n 4 warnings found'));
    expect(summary).toBe(
      [
        '\n 4 warnings found (use tsbuild build --check to expand):',
        " - UndefinedArgInFrom: FROM argument 'NOPE' is not declared (line 1)",
        ' - FromUnpinned: FROM busybox has no tag: the build gets whatever "latest" is when the image is pulled (line 1)',
        ' - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)',
        ' - NoEmptyContinuation: Empty continuation line (line 5)',
      ].join('\n'),
    );
  });

  it('--target names a stage; an unknown one is an error', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN exit 1\n' });
    await ok(root, ['--target', 'a', ctx]);
    const r = await tsbuild(root, ['--target', 'nope', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/target stage "nope" could not be found$/);
  });
});

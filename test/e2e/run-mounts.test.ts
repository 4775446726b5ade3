import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH, buildTop, namespaceHolders, ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

describe.skipIf(lacks('root'))('RUN --mount and --network', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('cache mounts persist across builds and never reach the layer', async () => {
    const df = 'FROM busybox\nRUN --mount=type=cache,target=/var/cache/app,id=app echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /count && ls /var/cache > /listing\n';
    await buildTop(root, context({ Dockerfile: df }));
    const read = await buildTop(root, context({ Dockerfile: df }), ['--no-cache']); // the step runs again
    expect(read('count').trim()).toBe('2');
    expect(read('listing')).toBe('app\n');
    const [image] = JSON.parse((await ok(root, ['inspect', (await ok(root, ['-q', '--no-cache', context({ Dockerfile: df })])).stdout.trim()])).stdout);
    const diff = path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff');
    expect(existsSync(path.join(diff, 'var'))).toBe(false); // the mount point was in the init layer
  });

  it('bind mounts the context read-only by default; rw writes are thrown away', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN --mount=target=/src cat /src/data > /copy && (touch /src/new 2>/dev/null && echo writable || echo read-only) > /ro\nRUN --mount=type=bind,source=.,target=/w,rw echo changed > /w/data && cat /w/data > /rw\n', data: 'from context\n' });
    const read = await buildTop(root, ctx);
    expect(read('rw')).toBe('changed\n');
    expect(readFileSync(path.join(ctx, 'data'), 'utf8')).toBe('from context\n');
    const first = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN --mount=target=/src cat /src/data > /copy && (touch /src/new 2>/dev/null && echo writable || echo read-only) > /ro\n', data: 'from context\n' }));
    expect(first('copy')).toBe('from context\n');
    expect(first('ro')).toBe('read-only\n');
  });

  it('a context bind shows the context as .dockerignore leaves it, and its content keys the cache', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN --mount=target=/ctx ls -A /ctx > /listing && cat /ctx/kept > /kept\n', '.dockerignore': 'hidden.txt\n', 'hidden.txt': 'secret', kept: 'v1' });
    const first = await buildTop(root, ctx);
    expect(first('listing')).toBe('.dockerignore\nDockerfile\nkept\n');
    writeFileSync(path.join(ctx, 'kept'), 'v2');
    const second = await buildTop(root, ctx);
    expect(second('kept')).toBe('v2');
  });

  it('mount targets work anywhere: under /etc and /dev, nested in another mount, through a symlink of the image, beside /proc; nothing reaches the layer', async () => {
    const secretFile = path.join(tempDir(), 'tok');
    writeFileSync(secretFile, 'tok-value');
    const ctx = context({
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir -p /real/deep && ln -s /real /link && ln -s real/deep /rel && echo base > /real/deep/kept',
        'RUN --mount=type=secret,id=tok,target=/etc/app.key --mount=type=cache,target=/etc/apt/x --mount=type=bind,target=/etc/ctx \\',
        '    --mount=type=tmpfs,target=/dev/scratch --mount=type=secret,id=tok,target=/dev/tok \\',
        '    --mount=type=cache,id=outer,target=/cache --mount=type=secret,id=tok,target=/cache/key --mount=type=tmpfs,target=/cache/sub/t \\',
        '    --mount=type=tmpfs,target=/link/in --mount=type=bind,target=/rel/ctx --mount=type=tmpfs,target=/proc-data \\',
        '    sh -c \'cat /etc/app.key /dev/tok /cache/key /etc/ctx/data /real/deep/ctx/data > /seen && touch /etc/apt/x/f /dev/scratch/f /cache/sub/t/f /real/in/f /proc-data/f && ls /etc/apt/x /real/in > /listing && ls /real/deep > /deep\'',
      ].join('\n'),
      data: 'ctx\n',
    });
    const r = await ok(root, ['-q', '--secret', `id=tok,src=${secretFile}`, ctx]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    const diff = path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff');
    expect(readFileSync(path.join(diff, 'seen'), 'utf8')).toBe('tok-valuetok-valuetok-valuectx\nctx\n');
    expect(readFileSync(path.join(diff, 'listing'), 'utf8')).toBe('/etc/apt/x:\nf\n\n/real/in:\nf\n');
    expect(readFileSync(path.join(diff, 'deep'), 'utf8')).toBe('ctx\nkept\n');
    // the layer holds what the command wrote, and no mount point
    expect(readdirSync(diff).sort()).toEqual(['deep', 'listing', 'seen']);
  });

  it('a target the image cannot hold, or inside /proc, is one located line', async () => {
    const cases: Array<[string, RegExp]> = [
      ['RUN --mount=type=tmpfs,target=/bin/sh/x true', /^tsbuild: .*Dockerfile:2: RUN --mount target \/bin\/sh\/x: \/bin\/busybox is not a directory in the image$/],
      ['RUN --mount=type=tmpfs,target=/proc/x true', /^tsbuild: .*Dockerfile:2: RUN --mount: target \/proc\/x cannot be mounted because it is inside \/proc$/],
      ['RUN --mount=type=tmpfs,target=/ true', /^tsbuild: .*Dockerfile:2: RUN --mount: target \/ would replace the root filesystem$/],
      ['RUN --mount=target=/ctx --mount=type=tmpfs,target=/ctx/new true', /^tsbuild: .*Dockerfile:2: RUN --mount target \/ctx\/new: cannot make its mount point \/ctx\/new: Read-only file system$/],
    ];
    for (const [run, expected] of cases) {
      const r = await tsbuild(root, [context({ Dockerfile: `FROM busybox\n${run}\n`, data: 'x' })]);
      expect(r.code, run).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1), run).toMatch(expected);
      expect(r.stderr).not.toMatch(new RegExp(root));
    }
  });

  it('bind mounts another stage', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox AS tools\nRUN mkdir /out && echo built > /out/artifact\nFROM busybox\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt cat /mnt/artifact > /got\n' }));
    expect(read('got')).toBe('built\n');
  });

  it('tmpfs mounts are empty and private to the step', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/f && df /scratch | tail -1 | awk \'{print $2}\' > /size\n' }));
    expect(read('size').trim()).toBe('1024');
  });

  it('secrets come from a file or the environment and stay out of the image and its history', async () => {
    const secretFile = path.join(tempDir(), 'token');
    writeFileSync(secretFile, 's3cr3t-file');
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=token --mount=type=secret,id=api,env=API_KEY cat /run/secrets/token > /seen-file && echo "$API_KEY" > /seen-env && ls -l /run/secrets/token | cut -c1-10 > /mode\n' });
    const r = await ok(root, ['-q', '--secret', `id=token,src=${secretFile}`, '--secret', 'id=api,env=TEST_API_KEY', ctx], { env: { TEST_API_KEY: 's3cr3t-env' } });
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    const diff = path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff');
    expect(readFileSync(path.join(diff, 'seen-file'), 'utf8')).toBe('s3cr3t-file');
    expect(readFileSync(path.join(diff, 'seen-env'), 'utf8')).toBe('s3cr3t-env\n');
    expect(readFileSync(path.join(diff, 'mode'), 'utf8')).toBe('-r--------\n');
    expect(existsSync(path.join(diff, 'run'))).toBe(false);
    expect(JSON.stringify(image.History)).not.toMatch(/s3cr3t/);
  });

  it('a secret given as an environment variable never shows in a command line', async () => {
    const { spawn } = await import('node:child_process');
    const { readdirSync, readFileSync: read } = await import('node:fs');
    const { BIN_PATH } = await import('../helpers/cli.js');
    const ctx = context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=tok,env=TOKEN sleep 2\n' });
    const child = spawn(process.execPath, [BIN_PATH, '--no-cache', '--secret', 'id=tok,env=TEST_TOKEN', ctx], { env: { TSBUILD_ROOT: root, TEST_TOKEN: 'Sup3rS3cretValue' }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const lines = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
      try {
        return read(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    });
    await exited;
    expect(lines.some((l) => l.includes('tsbuild-sandbox'))).toBe(true);
    expect(lines.filter((l) => l.includes('Sup3rS3cretValue'))).toEqual([]);
  });

  it('a required secret that was not given fails the build', async () => {
    const r = await tsbuild(root, [context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=missing,required true\n' })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/Dockerfile:2: secret missing: not provided/);
  });

  it('--network=none leaves only loopback', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " > /ifaces\n' }));
    expect(read('ifaces')).toBe('lo\n');
  });
});

describe.skipIf(lacks('root'))('RUN networks', () => {
  const root = tempDir('store-');
  let server: import('node:http').Server;
  let port = 0;
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
    const http = await import('node:http');
    server = http.createServer((_req, res) => res.end('host-only\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as import('node:net').AddressInfo).port;
  });
  afterAll(() => server?.close());

  it('the default network is a namespace of its own that cannot reach the host\'s loopback', async () => {
    const read = await buildTop(root, context({ Dockerfile: `FROM busybox\nRUN (wget -O - http://127.0.0.1:${port}/ || echo unreachable) > /got; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " > /ifaces\n` }));
    expect(read('got')).toBe('unreachable\n');
    expect(read('ifaces')).toBe('lo\ntap0\n');
  });

  it('every step gets a network namespace no other step had, and none outlives the build', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN readlink /proc/self/ns/net > /ns1\nRUN readlink /proc/self/ns/net > /ns2\nRUN cat /ns1 /ns2 > /both && readlink /proc/self/ns/net >> /both && ls /sys/class/net > /ifaces\n' }));
    const namespaces = read('both').trim().split('\n');
    expect(namespaces).toHaveLength(3);
    expect(new Set(namespaces).size).toBe(3);
    expect(read('ifaces')).toBe('lo\ntap0\n');
    for (const ns of namespaces) expect(namespaceHolders(ns), ns).toEqual([]);
  });

  it('the default network reaches the outside: names through 10.0.2.3, then TCP', async () => {
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN nslookup deb.debian.org > /dns && wget -q -O /release http://deb.debian.org/debian/dists/bookworm/Release && grep -c "^Codename: bookworm" /release > /got\n' }));
    expect(read('dns')).toMatch(/^Server:\s+10\.0\.2\.3\n/);
    expect(read('got')).toBe('1\n');
  });

  it('a step sees none of the connections the step before it left', async () => {
    // the first step's download is still under way when the step ends (its processes are killed)
    const read = await buildTop(root, context({ Dockerfile: 'FROM busybox\nRUN (wget -q -O /dev/null http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz &) ; sleep 0.2; grep -c ":0050 " /proc/net/tcp > /first || true\nRUN { cat /first; grep -c ":0050 " /proc/net/tcp; } > /counts || true\n' }));
    expect(read('counts')).toBe('1\n0\n');
  });

  it('without libslirp, RUN steps share the host\'s network, and the build says so once, before the first runs', async () => {
    const lib = realpathSync(execFileSync('sh', ['-c', "ldconfig -p | sed -n 's/.*libslirp.so.0 .*=> //p' | head -n 1"], { encoding: 'utf8' }).trim());
    const ctx = context({ Dockerfile: `FROM busybox\nRUN echo first step\nRUN wget -O - http://127.0.0.1:${port}/ > /got\n` });
    // the library hidden from this one build: an empty file where it was, in a mount namespace of its own
    const iid = path.join(tempDir('iid-'), 'id');
    const r = await execa('unshare', ['-m', 'sh', '-c', `mount --bind /dev/null ${lib} && exec "$0" "$@"`, process.execPath, BIN_PATH, '--progress=plain', '--iidfile', iid, ctx], { env: { TSBUILD_ROOT: root }, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    // told once, when the first step that needs it runs
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('WARNING'));
    expect(warnings).toEqual([expect.stringMatching(/^WARNING: libslirp cannot be loaded \(\S*\/libslirp\.so\.0: file too short\): RUN steps share the host network instead of a network of their own$/)]);
    expect(r.stderr.indexOf(warnings[0]!)).toBeLessThan(r.stderr.search(/^#\d+ [\d.]+ first step$/m));
    const [image] = JSON.parse((await ok(root, ['inspect', readFileSync(iid, 'utf8')])).stdout);
    expect(readFileSync(path.join(root, 'layers', image.Layers.at(-1).ChainID.slice(7), 'diff', 'got'), 'utf8')).toBe('host-only\n');
  });

  it('--network=host shares the host\'s network', async () => {
    const read = await buildTop(root, context({ Dockerfile: `FROM busybox\nRUN --network=host wget -O - http://127.0.0.1:${port}/ > /got\n` }));
    expect(read('got')).toBe('host-only\n');
  });
});

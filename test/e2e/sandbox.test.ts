import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTop as buildTopOf, ok } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const buildTop = (root: string, dockerfile: string, args: string[] = []) => buildTopOf(root, context({ Dockerfile: dockerfile }), args);

describe.skipIf(lacks('root'))('RUN steps run isolated, as Docker runs them', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(), 'busybox']);
  });

  it('gets its own hostname, PID namespace and mount table, pivot_root-ed into the image', async () => {
    const read = await buildTop(
      root,
      'FROM busybox\nRUN hostname > /out.hostname; echo $$ > /out.pid; cat /proc/1/cmdline | tr "\\0" " " > /out.init; cat /proc/mounts > /out.mounts; ls / > /out.ls; ls /proc | grep -c "^[0-9]" > /out.procs\n',
    );
    expect(read('out.hostname')).toBe('buildkitsandbox\n');
    expect(Number(read('out.pid'))).toBeLessThanOrEqual(3); // PID 1 is the sandbox init, the shell its child
    expect(read('out.init').trim()).toBe('tsbuild-init'); // PID 1 shows no host path of the store or the step
    expect(Number(read('out.procs'))).toBeLessThanOrEqual(4);
    const mounts = read('out.mounts');
    expect(mounts).toMatch(/^overlay \/ overlay /m);
    expect(mounts).not.toContain(root); // no host path is visible
    expect(mounts).not.toMatch(/ \/work| \/var\/lib\/docker/);
    expect(read('out.ls').split('\n')).toEqual(expect.arrayContaining(['bin', 'etc', 'proc', 'dev', 'sys', 'tmp']));
  });

  it('has Docker\'s default capabilities as root, none as another user', async () => {
    const read = await buildTop(root, 'FROM busybox\nRUN grep -E "^Cap(Eff|Bnd)" /proc/self/status > /caps\nUSER app\nRUN grep CapEff /proc/self/status > /tmp/caps-app\n');
    expect(read('tmp/caps-app')).toMatch(/^CapEff:\s+0000000000000000$/m);
    const root2 = await buildTop(root, 'FROM busybox\nRUN grep -E "^Cap(Eff|Bnd)" /proc/self/status > /caps\n');
    expect(root2('caps')).toMatch(/^CapEff:\s+00000000a80425fb$/m);
    expect(root2('caps')).toMatch(/^CapBnd:\s+00000000a80425fb$/m);
  });

  it('cannot open host devices, make namespaces, use the keyring or inherit descriptors', async () => {
    const read = await buildTop(
      root,
      'FROM busybox\nRUN (mknod /blk b 7 0 && head -c1 /blk >/dev/null 2>&1 && echo opened || echo refused) > /dev-test; (unshare -U true 2>/dev/null && echo made || echo refused) > /ns-test; ls /proc/self/fd | wc -l > /fd-count; grep CapInh /proc/self/status > /inh\n',
    );
    expect(read('dev-test')).toBe('refused\n');
    expect(read('ns-test')).toBe('refused\n');
    expect(read('fd-count').trim()).toBe('4'); // 0, 1, 2 and the one ls opens
    expect(read('inh')).toMatch(/^CapInh:\s+0000000000000000$/m);
  });

  it('runs as USER resolved through /etc/passwd and /etc/group, with its HOME', async () => {
    const read = await buildTop(root, 'FROM busybox\nUSER app\nRUN id > /tmp/id; echo $HOME > /tmp/home\n');
    // BuildKit's RUN (unlike docker run) does not repeat the primary group among the supplementary ones
    expect(read('tmp/id')).toBe('uid=1000(app) gid=1000(app) groups=2000(extra)\n');
    expect(read('tmp/home')).toBe('/home/app\n');
    const numeric = await buildTop(root, 'FROM busybox\nUSER 4242:77\nRUN id -u > /tmp/u; id -g >> /tmp/u\n');
    expect(numeric('tmp/u')).toBe('4242\n77\n');
  });

  it('sees ENV, ARG and --build-arg values, the default PATH, and WORKDIR as its cwd', async () => {
    const read = await buildTop(
      root,
      'FROM busybox\nARG FROM_CLI\nARG WITH_DEFAULT=dflt\nENV GREETING="hello world"\nWORKDIR /work/dir\nRUN echo "$GREETING|$FROM_CLI|$WITH_DEFAULT|$PATH|$(pwd)" > out\n',
      ['--build-arg', 'FROM_CLI=cli'],
    );
    expect(read('work/dir/out')).toBe('hello world|cli|dflt|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/work/dir\n');
  });

  it('runs the exec form without a shell', async () => {
    const read = await buildTop(root, 'FROM busybox\nRUN ["/bin/sh", "-c", "echo \\"$0\\" > /argv0", "exec-form"]\n');
    expect(read('argv0')).toBe('exec-form\n');
  });

  it('leaves the init layer and the mounts out of the layer', async () => {
    const r = await ok(root, ['-q', context({ Dockerfile: 'FROM busybox\nRUN echo x > /etc/hosts; touch /dev/made /proc/../made-root; echo y > /tmp/y\n' })]);
    const [image] = JSON.parse((await ok(root, ['inspect', r.stdout.trim()])).stdout);
    const out = tempDir();
    await ok(root, ['save', r.stdout.trim(), '-o', path.join(out, 'i.tar')]);
    const { execFileSync } = await import('node:child_process');
    const top = image.Layers.at(-1).DiffID.slice(7);
    const listing = execFileSync('tar', ['-xOf', path.join(out, 'i.tar'), `blobs/sha256/${top}`]);
    const names = execFileSync('tar', ['-t'], { input: listing, encoding: 'utf8' }).trim().split('\n');
    expect(names.sort()).toEqual(['made-root', 'tmp/', 'tmp/y']);
  });
});

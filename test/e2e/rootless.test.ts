// Rootless: an ordinary user with subordinate ids builds with no sudo, in a user namespace of its own.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, storeLeftovers } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';
import { installedForUsers, okAs, shareReadOnly, testUser, tsbuildAs, userDir, type TestUser } from '../helpers/rootless.js';

const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Files of a layer tar: path → "uid:gid mode-type". */
function tarOwners(tar: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of execFileSync('tar', ['-tvf', tar, '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n')) {
    const f = line.split(/\s+/);
    out.set(f.slice(5).join(' ').replace(/ -> .*| link to .*/, '').replace(/^\.\//, ''), `${f[1]} ${f[0]![0]}`);
  }
  return out;
}

/** The layer tars of a saved image (docker-archive), top last. */
function savedLayers(archive: string): string[] {
  const dir = tempDir('saved-');
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const [manifest] = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  return (manifest.Layers as string[]).map((l) => path.join(dir, l));
}

describe.skipIf(lacks('root') || !existsSync('/usr/bin/newuidmap'))('rootless builds: an ordinary user with subordinate ids', () => {
  const rootStore = tempDir('store-');
  let user: TestUser;
  let home: string;
  let tunMode: number;

  beforeAll(async () => {
    user = testUser();
    home = userDir(user, 'home-');
    // udev makes /dev/net/tun 0666 on a distribution's machine; a bare VM may leave it 0600
    tunMode = statSync('/dev/net/tun').mode & 0o777;
    chmodSync('/dev/net/tun', 0o666);
    const base = tempDir('base-');
    await ok(rootStore, ['import', busyboxRootfsTar(), 'busybox']);
    await ok(rootStore, ['save', 'busybox', '-o', path.join(base, 'busybox.tar')]);
    shareReadOnly(base);
    await okAs(user, home, ['load', '-i', path.join(base, 'busybox.tar')]);
  });

  afterAll(() => chmodSync('/dev/net/tun', tunMode));

  it('builds the image root builds, byte for byte, with the image’s owners in its layers and the store in ~/.local/share', async () => {
    const dir = context({
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      Dockerfile: [
        'FROM busybox',
        'COPY --chown=1000:1000 a.txt /home/app/a.txt',
        'COPY b.txt /etc/b.txt',
        'RUN mkdir -p /opt/d/sub && echo 1 > /opt/d/sub/f && echo x > /opt/d/keep && chown -R 33:33 /opt/d && mkfifo /opt/fifo',
        'RUN rm -rf /opt/d && mkdir -p /opt/d && echo new > /opt/d/n && rm /etc/b.txt && rm -rf /root',
        'RUN ln -s /etc/passwd /tmp/lnk && ln /etc/group /tmp/hard && touch /tmp/own && id -u > /tmp/root-id',
        'USER app',
        'RUN id > /tmp/id.txt && touch /tmp/app-file',
        '',
      ].join('\n'),
    });
    shareReadOnly(dir);
    const asRoot = (await ok(rootStore, ['build', '-q', dir], { env: EPOCH })).stdout.trim();
    const rootless = (await okAs(user, home, ['build', '-q', '-t', 'app', dir], { env: EPOCH })).stdout.trim();
    expect(rootless).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(rootless).toBe(asRoot);
    expect(existsSync(path.join(home, '.local/share/tsbuild/images.json'))).toBe(true);
    expect((await okAs(user, home, ['images'])).stdout).toMatch(/^app\s+latest\s/m); // read as the user, no namespace

    const archive = path.join(userDir(user, 'out-'), 'app.tar');
    await okAs(user, home, ['save', 'app', '-o', archive]);
    const layers = savedLayers(archive).map(tarOwners);
    expect(layers[1]!.get('home/app/a.txt')).toBe('1000/1000 -');
    expect(layers[3]!.get('opt/fifo')).toBe('0/0 p');
    expect(layers[4]!.get('opt/d/.wh..wh..opq')).toBe('0/0 -');
    expect(layers[4]!.get('etc/.wh.b.txt')).toBe('0/0 -');
    expect(layers[4]!.get('.wh.root')).toBe('0/0 -');
    expect(layers[5]!.get('tmp/own')).toBe('0/0 -');
    expect(layers[6]!.get('tmp/app-file')).toBe('1000/1000 -');
    // on disk the files belong to the user's subordinate ids, never to root
    const start = Number(/^tsbuild-rootless:(\d+):/m.exec(readFileSync('/etc/subuid', 'utf8'))![1]);
    const layersDir = path.join(home, '.local/share/tsbuild/layers');
    const owners = readdirSync(layersDir).flatMap((l) => (existsSync(path.join(layersDir, l, 'diff/tmp/app-file')) ? [statSync(path.join(layersDir, l, 'diff/tmp/app-file')).uid] : []));
    expect(owners).toEqual([start + 999]);

    const again = await okAs(user, home, ['build', '--progress=plain', dir], { env: EPOCH });
    expect(again.stderr.match(/CACHED/g)?.length).toBe(6);
  });

  it.skipIf(lacks('docker'))('the seed example, built rootless, loads and runs in Docker', async () => {
    const example = tempDir('seed-');
    cpSync(path.join(REPO, 'examples/changed-ubuntu'), example, { recursive: true });
    shareReadOnly(example);
    const archive = path.join(userDir(user, 'out-'), 'seed.tar');
    await okAs(user, home, ['build', '-q', '-t', 'tsbuild-rootless-seed', '-o', archive, example]);
    execFileSync('/usr/bin/docker', ['load', '-i', archive], { stdio: 'ignore' });
    try {
      expect(execFileSync('/usr/bin/docker', ['run', '--rm', 'tsbuild-rootless-seed', 'cat', '/tmp/newfile'], { encoding: 'utf8' })).toBe('Hello world\n');
    } finally {
      execFileSync('/usr/bin/docker', ['rmi', 'tsbuild-rootless-seed'], { stdio: 'ignore' });
    }
  });

  it('a step is root of its own namespaces: its /proc, /dev and network, nothing of the host', async () => {
    const dir = context({
      Dockerfile: [
        'FROM busybox',
        'RUN id -u > /uid && ls /proc | grep -cE "^[0-9]+$" > /pids && ls /dev > /dev-list && echo x > /dev/null && head -c 4 /dev/zero | wc -c > /zero && ls /sys/class/net > /net && cat /proc/1/cmdline | tr "\\0" " " > /init',
        '',
      ].join('\n'),
    });
    shareReadOnly(dir);
    const built = (await okAs(user, home, ['build', '-q', dir])).stdout.trim();
    const layers = savedLayers(await saveAs(built));
    const top = tempDir('top-');
    execFileSync('tar', ['-xf', layers.at(-1)!, '-C', top]);
    const read = (f: string) => readFileSync(path.join(top, f), 'utf8').trim();
    expect(read('uid')).toBe('0');
    expect(Number(read('pids'))).toBeLessThanOrEqual(4); // its init, the shell, ls, grep
    expect(read('dev-list').split('\n')).toEqual(expect.arrayContaining(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'mqueue']));
    expect(read('zero')).toBe('4');
    expect(read('net').split('\n').sort()).toEqual(['lo', 'tap0']);
    expect(read('init')).toBe('tsbuild-init'); // no host path of the store in the step's view

    for (const [network, nets] of [['none', ['lo']], ['host', readdirSync('/sys/class/net').sort()]] as const) {
      const r = await okAs(user, home, ['build', '--no-cache', '--progress=plain', `--network=${network}`, context({ Dockerfile: 'FROM busybox\nRUN echo nets: $(ls /sys/class/net)\n' }, shareable())]);
      expect(r.stderr).toContain(`nets: ${[...nets].join(' ')}`);
    }
    // with the host's network the host's /sys is bound: read-only down to its last submount (cgroups)
    const sys = await okAs(user, home, ['build', '--no-cache', '--progress=plain', '--network=host', context({ Dockerfile: 'FROM busybox\nRUN awk \'$5 ~ /^\\/sys/ { print "sys-mount", $5, substr($6, 1, 2) }\' /proc/self/mountinfo\n' }, shareable())]);
    const sysMounts = [...sys.stderr.matchAll(/sys-mount (\S+) (\S+)/g)].map((m) => [m[1], m[2]]);
    expect(sysMounts.length).toBeGreaterThan(1);
    expect(sysMounts.filter(([, ro]) => ro !== 'ro')).toEqual([]);
  });

  it('a device node of a base layer is an empty file to RUN steps, and stays a node in the layer', async () => {
    const dir = tempDir('devbase-');
    const rootfs = path.join(dir, 'rootfs');
    execFileSync('mkdir', ['-p', path.join(rootfs, 'opt')]);
    execFileSync('tar', ['-C', rootfs, '-xf', busyboxRootfsTar()]);
    execFileSync('mknod', [path.join(rootfs, 'opt/node'), 'c', '1', '3']);
    const store = tempDir('store-');
    await ok(store, ['import', execFileSync('sh', ['-c', `tar --numeric-owner -C ${rootfs} -cf ${dir}/devbase.tar . && echo ${dir}/devbase.tar`], { encoding: 'utf8' }).trim(), 'devbase']);
    await ok(store, ['save', 'devbase', '-o', path.join(dir, 'saved.tar')]);
    shareReadOnly(dir);
    const myHome = userDir(user, 'home-');
    await okAs(user, myHome, ['load', '-i', path.join(dir, 'saved.tar')]);
    const r = await okAs(user, myHome, ['build', '--progress=plain', '-t', 'devuser', context({ Dockerfile: 'FROM devbase\nRUN echo kind: $(stat -c %F /opt/node)\n' }, shareable())]);
    expect(r.stderr).toContain('kind: regular empty file');
    const layers = savedLayers(await saveAs('devuser', myHome)).map(tarOwners);
    expect(layers[0]!.get('opt/node')).toBe('0/0 c');
  });

  /** A context directory the user can read. */
  function shareable(): string {
    const dir = tempDir('ctx-');
    shareReadOnly(dir);
    return dir;
  }

  async function saveAs(image: string, from = home): Promise<string> {
    const archive = path.join(userDir(user, 'out-'), 'image.tar');
    await okAs(user, from, ['save', image, '-o', archive]);
    return archive;
  }

  it('what a user namespace cannot do is one line saying what to do, and leaves the store clean', async () => {
    const store = userDir(user, 'store-');
    const env = { TSBUILD_ROOT: store };
    await okAs(user, home, ['load', '-i', await saveAs('busybox')], { env });
    const cases: Array<[string, string[], RegExp]> = [
      [
        'FROM busybox\nCOPY --chown=70000:70000 f /f\nRUN true\n',
        [],
        /^tsbuild: \S+Dockerfile:3: "f" belongs to 70000:70000, beyond the 65537 uids and 65537 gids this rootless build maps: give the user more subordinate ids in \/etc\/subuid and \/etc\/subgid$/,
      ],
      ['FROM busybox\nUSER 70000\nRUN true\n', [], /^tsbuild: \S+Dockerfile:3: RUN could not set up the step: the step's user 70000:0: the uid is beyond the ids this rootless build maps \(\/etc\/subuid, \/etc\/subgid\)$/],
      ['FROM busybox\nRUN true\n', ['--runtime', 'runc'], /^tsbuild: --runtime runc needs root: a rootless build runs its steps in the built-in sandbox \(leave --runtime out\)$/],
      ['FROM busybox\nRUN true\n', ['--memory', '64m'], /^tsbuild: \S+Dockerfile:2: resource limits need a cgroup under \/sys\/fs\/cgroup tsbuild can write, which takes root: a rootless build cannot set --memory, --cpu-\*, --cpuset-cpus or --pids-limit$/],
    ];
    for (const [dockerfile, args, message] of cases) {
      const dir = context({ Dockerfile: dockerfile, f: 'f\n' });
      shareReadOnly(dir);
      const r = await tsbuildAs(user, home, ['build', '-q', ...args, dir], { env });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim()).toMatch(message);
      expect(storeLeftovers(store)).toEqual([]);
    }

    // a store root's builds made: its layers' opaque directories are in trusted.* xattrs
    const rootMade = tempDir('store-');
    await ok(rootMade, ['import', busyboxRootfsTar(), 'busybox']);
    for (const d of ['', 'layers', 'l', 'tmp', 'locks', 'blobs', 'blobs/sha256']) chownSync(path.join(rootMade, d), user.uid, user.gid);
    const mixed = await tsbuildAs(user, home, ['build', '-q', shareable()], { env: { TSBUILD_ROOT: rootMade } });
    expect(mixed.code).toBe(1);
    expect(mixed.stderr.trim()).toBe(`tsbuild: ${rootMade} holds layers made as root, which a build made rootless (in a user namespace) cannot use: give it a store of its own (--root DIR or TSBUILD_ROOT)`);

    chmodSync('/dev/net/tun', 0o600);
    try {
      const r = await tsbuildAs(user, home, ['build', '-q', '--no-cache', context({ Dockerfile: 'FROM busybox\nRUN true\n' }, shareable())], { env });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/Dockerfile:2: RUN could not set up the step: could not connect the step's network: open \/dev\/net\/tun: Permission denied \(an ordinary user needs \/dev\/net\/tun readable and writable: as root, chmod 0666 \/dev\/net\/tun, .*or build with --network=none\)$/);
    } finally {
      chmodSync('/dev/net/tun', 0o666);
    }
  });

  it('a user without subordinate ids is told how to get them; nothing is written', async () => {
    const bare = testUser('tsbuild-nosubids', false);
    const bareHome = userDir(bare, 'home-');
    const r = await tsbuildAs(bare, bareHome, ['build', '-q', shareable()]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe(
      'tsbuild: error: rootless: tsbuild-nosubids has no subordinate user ids in /etc/subuid; as root, give it some: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 tsbuild-nosubids',
    );
    expect(existsSync(path.join(bareHome, '.local'))).toBe(false);
  });

  it('the user can empty its store and delete it (its files belong to subordinate ids)', async () => {
    const myHome = userDir(user, 'home-');
    await okAs(user, myHome, ['load', '-i', await saveAs('busybox')]);
    await okAs(user, myHome, ['build', '-q', '-t', 'x', context({ Dockerfile: 'FROM busybox\nRUN mkdir -p /deep/dir && echo x > /deep/dir/f && chmod 0500 /deep/dir\n' }, shareable())]);
    await okAs(user, myHome, ['rmi', 'x', 'busybox']);
    await okAs(user, myHome, ['prune', '--all']);
    const rm = await execa('rm', ['-rf', path.join(myHome, '.local/share/tsbuild')], { uid: user.uid, gid: user.gid, reject: false });
    expect(rm.stderr).toBe('');
    expect(existsSync(path.join(myHome, '.local/share/tsbuild'))).toBe(false);
  });
});

/**
 * A CI job in a container without privileges (a Kubernetes pod, a GitLab runner's job): no
 * CAP_SYS_ADMIN, Docker's default capabilities, /usr of this machine read-only, tsbuild's files
 * and the context mounted in, the store in a volume (an emptyDir). What the pod spec in the README
 * asks for is given here as Docker's flags: seccomp and AppArmor unconfined, /proc unmasked.
 */
describe.skipIf(lacks('root', 'docker') || !existsSync('/usr/sbin/setcap'))('rootless builds in a container without privileges', () => {
  const DOCKER = '/usr/bin/docker';
  const IMAGE = 'tsbuild-test-unprivileged:latest';
  const rootStore = tempDir('store-');
  const work = tempDir('pod-');
  let base: string;
  let caps: string;
  let dir: string;
  let asRoot: string;

  beforeAll(async () => {
    // the container's own files: /usr comes from the machine (merged /usr: bin, lib are links into it)
    const rootfs = path.join(work, 'rootfs');
    for (const d of ['etc', 'tmp', 'home/builder', 'proc', 'sys', 'dev', 'opt', 'usr']) execFileSync('mkdir', ['-p', path.join(rootfs, d)]);
    for (const l of ['bin', 'lib', 'lib64', 'sbin']) execFileSync('ln', ['-s', `usr/${l}`, path.join(rootfs, l)]);
    chmodSync(path.join(rootfs, 'tmp'), 0o1777);
    context({
      'etc/passwd': 'root:x:0:0::/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n',
      'etc/group': 'root:x:0:\nbuilder:x:1000:\n',
      'etc/subuid': 'builder:100000:65536\n',
      'etc/subgid': 'builder:100000:65536\n',
    }, rootfs);
    execFileSync('tar', ['-C', rootfs, '-cf', path.join(work, 'rootfs.tar'), '.']);
    execFileSync(DOCKER, ['import', path.join(work, 'rootfs.tar'), IMAGE]);
    // in an image, newuidmap and newgidmap carry file capabilities, not the setuid bit (as BuildKit's rootless image)
    caps = path.join(work, 'caps');
    execFileSync('mkdir', ['-p', caps]);
    for (const [tool, cap] of [['newuidmap', 'cap_setuid=ep'], ['newgidmap', 'cap_setgid=ep']]) {
      execFileSync('cp', [`/usr/bin/${tool}`, caps]);
      chmodSync(path.join(caps, tool!), 0o755);
      execFileSync('/usr/sbin/setcap', [cap!, path.join(caps, tool!)]);
    }
    base = path.join(work, 'busybox.tar');
    await ok(rootStore, ['import', busyboxRootfsTar(), 'busybox']);
    await ok(rootStore, ['save', 'busybox', '-o', base]);
    dir = context({ 'a.txt': 'a\n', Dockerfile: 'FROM busybox\nCOPY --chown=1000:1000 a.txt /home/app/\nRUN mkdir -p /opt/x && echo 1 > /opt/x/f && rm -rf /root && id -u > /uid\n' });
    shareReadOnly(work, dir);
    asRoot = (await ok(rootStore, ['build', '-q', dir], { env: EPOCH })).stdout.trim();
  });

  afterAll(() => {
    execFileSync(DOCKER, ['rmi', IMAGE], { stdio: 'ignore' });
  });

  /** Loads the base and builds the context in a fresh container as `user`; the build's output. */
  async function buildIn(user: string, flags: string[], buildArgs: string[] = ['--network=host'], toolsPath = '/caps:/usr/bin:/usr/sbin', env: string[] = []) {
    const home = tempDir('home-');
    chownSync(home, 1000, 1000);
    const pkg = path.dirname(path.dirname(installedForUsers()));
    const script = `node /opt/tsbuild/bin/tsbuild.cjs load -q -i /base.tar && node /opt/tsbuild/bin/tsbuild.cjs build -q ${buildArgs.join(' ')} /ctx`;
    return execa(DOCKER, [
      'run', '--rm', '--user', user, ...flags,
      '-e', 'HOME=/home/builder', '-e', `PATH=${toolsPath}`, ...env.flatMap((e) => ['-e', e]), '-e', `SOURCE_DATE_EPOCH=${EPOCH.SOURCE_DATE_EPOCH}`,
      '-v', '/usr:/usr:ro', '-v', `${caps}:/caps:ro`, '-v', `${pkg}:/opt/tsbuild:ro`, '-v', `${dir}:/ctx:ro`, '-v', `${base}:/base.tar:ro`, '-v', `${home}:/home/builder`,
      IMAGE, 'sh', '-c', script,
    ], { reject: false, timeout: 120_000 });
  }

  const POD = ['--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined'];

  it('an ordinary user (uid 1000) and root without CAP_SYS_ADMIN build root’s image, byte for byte', async () => {
    // root with only what the README's pod spec leaves it: SETUID, SETGID, SETFCAP, no new privileges
    const rootFlags = ['--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID', '--cap-add', 'SETFCAP', '--security-opt', 'no-new-privileges'];
    // the user's store is under its HOME (a volume here); root's is /var/lib/tsbuild, so a volume goes there
    for (const [user, flags, env] of [['1000:1000', POD, []], ['0:0', [...POD, ...rootFlags], ['TSBUILD_ROOT=/home/builder/store']]] as const) {
      const r = await buildIn(user, [...flags], ['--network=host'], undefined, [...env]);
      expect(r.stderr, user).toBe('');
      expect(r.stdout.trim(), user).toBe(asRoot);
    }
    // without the volume, root's store is on the container's own overlayfs
    const noVolume = await buildIn('0:0', [...POD, ...rootFlags]);
    expect(noVolume.stderr.trim()).toMatch(/^tsbuild: \S*Dockerfile:3: RUN could not set up the step: mount overlay: the store is on an overlayfs \(a container's own filesystem\), which cannot hold another overlay's layers: put it on a volume \(--root or TSBUILD_ROOT; an emptyDir in Kubernetes\)$/);
  });

  it('what the container withholds is one line naming the setting', async () => {
    const cases: Array<[string[], string[], RegExp]> = [
      [['--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined'], ['--network=host'], /^tsbuild: error: rootless: cannot make a user namespace: Operation not permitted \(inside a container, its seccomp profile must allow unshare: seccompProfile Unconfined in Kubernetes, --security-opt seccomp=unconfined in Docker\)$/],
      [['--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined'], ['--network=host'], /^tsbuild: \S*Dockerfile:3: RUN could not set up the step: cannot mount \/proc in a user namespace: this machine's \/proc has paths masked \(in a container: procMount: Unmasked in Kubernetes, --security-opt systempaths=unconfined in Docker\)$/],
      [POD, [], /^tsbuild: \S*Dockerfile:3: RUN could not set up the step: could not connect the step's network: open \/dev\/net\/tun: No such file or directory \(a container without \/dev\/net\/tun, such as a Kubernetes pod: build with --network=host, which is the container's own network, or --network=none\)$/],
    ];
    for (const [flags, buildArgs, message] of cases) {
      const r = await buildIn('1000:1000', flags, buildArgs);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr.trim()).toMatch(message);
    }
    // the distribution's setuid newuidmap is refused in a container without CAP_SYS_ADMIN
    const setuid = await buildIn('1000:1000', POD, ['--network=host'], '/usr/bin:/usr/sbin');
    expect(setuid.exitCode).not.toBe(0);
    expect(setuid.stderr.trim()).toBe(
      "tsbuild: error: rootless: newuidmap could not map builder's subordinate ids: newuidmap: write to uid_map failed: Operation not permitted (in a container, give newuidmap and newgidmap file capabilities instead of the setuid bit: chmod u-s, setcap cap_setuid=ep /usr/bin/newuidmap, setcap cap_setgid=ep /usr/bin/newgidmap)",
    );
  });
});

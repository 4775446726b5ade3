import { execFileSync } from 'node:child_process';
import { linkSync } from 'node:fs';
import path from 'node:path';

/**
 * The differential suite's cases: each is built by Docker's BuildKit and by tsbuild, and the two
 * images must be equal (flattened files and runtime config), or both builds must fail.
 *
 * `buildah` cases are Buildah's conformance Dockerfiles (test/golden/buildah, Apache-2.0) that use
 * busybox or scratch; `own` cases cover each Dockerfile feature. `skip` and `ignore` entries are
 * documented exceptions: Docker inconsistencies, or what this machine cannot do.
 */
export interface DiffCase {
  name: string;
  /** A directory of test/golden/buildah/testdata used as the context (default: testdata itself). */
  buildahDir?: string;
  /** The Dockerfile's name in the context (default Dockerfile). */
  dockerfile?: string;
  /** Files of an own case's context (path → content); `Dockerfile` among them. */
  files?: Record<string, string>;
  buildArgs?: string[];
  /** Secrets both builders get (`--secret id=ID,src=FILE`): id → content. */
  secrets?: Record<string, string>;
  target?: string;
  /** Extra context preparation (archives made with tar, ...). */
  prepare?: (dir: string) => void;
  /** Why this case cannot run here (then it is listed, not built). */
  skip?: string;
  /** Paths that may differ, with the reason in `why`. */
  ignorePaths?: RegExp[];
  ignoreConfig?: string[];
  why?: string;
}

/** Directories of Buildah's testdata whose cases need what this machine lacks. */
const buildahExcluded = new Set(['mount', 'transientmount', 'mount-targets', 'header-builtin', 'copy-parents', 'builtins', 'heredoc']);
const buildahExcludedSubdirs = new Set(['env/precedence']);

const buildahRootFiles = [
  'Dockerfile.copyfrom_1', 'Dockerfile.copyfrom_2', 'Dockerfile.copyfrom_3', 'Dockerfile.copyfrom_3_1', 'Dockerfile.copyfrom_4',
  'Dockerfile.copyfrom_5', 'Dockerfile.copyfrom_6', 'Dockerfile.copyfrom_7', 'Dockerfile.copyfrom_8', 'Dockerfile.copyfrom_9',
  'Dockerfile.copyfrom_10', 'Dockerfile.copyfrom_11', 'Dockerfile.copyfrom_12', 'Dockerfile.copyfrom_13', 'Dockerfile.edgecases',
  'Dockerfile.env', 'Dockerfile.exposedefault', 'Dockerfile.run.args', 'Dockerfile.margs', 'Dockerfile.quoted-arg', 'Dockerfile.reusebase',
  'Dockerfile.shell',
];

const buildahSkips: Record<string, string> = {
  'Dockerfile.add': 'downloads from github.com: this machine has no internet (ADD of URLs is covered by an own case on 127.0.0.1)',
  mount: 'needs `buildah bud --volume`, which docker build does not have',
  transientmount: 'needs `buildah bud --volume`, which docker build does not have',
  'mount-targets': 'its # syntax directive pulls a frontend image from a registry',
  'header-builtin': 'pulls quay.io/libpod/busybox by digest and a fedora image',
  'copy-parents': 'COPY --parents needs the labs Dockerfile frontend (a registry pull)',
  builtins: 'needs the TARGETPLATFORM/BUILDPLATFORM builtins of a newer frontend and an image from a registry',
  'env/precedence': 'its # syntax directive pulls a frontend image from a registry',
  'heredoc/Dockerfile.heredoc_copy': 'its # syntax directive pulls a frontend image from a registry',
  'Dockerfile.heredoc-quoting':
    "this machine's reference dockerd (20.10) has a builtin Dockerfile frontend older than heredocs (Dockerfile 1.4) and rejects them; current Docker builds them. tsbuild's heredocs are checked against BuildKit's documented results in test/e2e/heredoc.test.ts",
};

/**
 * Every directory of Buildah's testdata holding Dockerfiles is a context, and each Dockerfile in
 * it a case; the Dockerfile.* files at the top use the testdata directory itself as context.
 */
export function buildahCases(list: (dir: string) => Array<{ name: string; dir: boolean }>): DiffCase[] {
  const cases: DiffCase[] = [];
  const walk = (dir: string) => {
    const entries = list(dir);
    for (const e of entries.filter((x) => !x.dir && x.name.startsWith('Dockerfile')).sort((a, b) => a.name.localeCompare(b.name))) {
      cases.push({ name: `buildah/${dir}/${e.name}`, buildahDir: dir, dockerfile: e.name });
    }
    for (const e of entries.filter((x) => x.dir).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!buildahExcludedSubdirs.has(`${dir}/${e.name}`)) walk(`${dir}/${e.name}`);
    }
  };
  for (const e of list('').filter((x) => x.dir && !buildahExcluded.has(x.name))) walk(e.name);
  for (const f of buildahRootFiles) cases.push({ name: `buildah/${f}`, dockerfile: f });
  for (const [name, skip] of Object.entries(buildahSkips)) cases.push({ name: `buildah/${name}`, skip });
  return cases;
}

const B = 'FROM busybox';

export const ownCases: DiffCase[] = [
  {
    name: 'env and arg expansion',
    files: {
      Dockerfile: `ARG BASE=busybox\nFROM $BASE\nARG A=1 B="two words"\nENV E1=$A E2="\${B}" E3=\${UNSET:-dflt} E4=\${A:+set} E5='$A' E6=a\\ b\nENV legacy value with spaces\nARG A\nARG C\nENV C=\${C:-c-default}\nRUN echo "$A|$B|$E1|$E2|$E3|$E4|$E5|$E6|$legacy|$C" > /out\nLABEL "key one"=v1 k2="$E2" k3=$A\n`,
    },
    buildArgs: ['C=from-cli'],
  },
  {
    name: 'arg scoping across stages',
    files: {
      Dockerfile: `ARG G=global\nFROM busybox AS one\nRUN echo "[$G]" > /no-redeclare\nARG G\nRUN echo "[$G]" > /redeclared\nFROM one\nARG G=stage-default\nRUN echo "[$G]" > /second\n`,
    },
  },
  {
    name: 'build arg from the environment',
    files: { Dockerfile: `${B}\nARG FROM_ENV\nRUN echo "$FROM_ENV" > /v\n` },
    buildArgs: ['FROM_ENV'],
  },
  {
    name: 'copy semantics',
    files: {
      Dockerfile: `${B}\nWORKDIR /w\nCOPY a.txt .\nCOPY a.txt b.txt sub/\nCOPY dir /d1\nCOPY dir/ /d2/\nCOPY dir /tmp\nCOPY a.txt /newdir/renamed\nCOPY *.txt /glob/\nCOPY dir/s* /glob2/\nCOPY --chown=1000:1000 a.txt /owned\nCOPY --chmod=600 b.txt /private\nCOPY ["a.txt", "/json form/"]\n`,
      'a.txt': 'a\n',
      'b.txt': 'bb\n',
      'dir/sub/file': 'deep\n',
      'dir/top': 'top\n',
    },
  },
  {
    name: 'copy into symlinked destinations',
    files: {
      Dockerfile: `${B}\nRUN mkdir -p /real && ln -s /real /link && ln -s real /rel\nCOPY a.txt /link/\nCOPY a.txt /rel/x\nCOPY dir /link/d\n`,
      'a.txt': 'a\n',
      'dir/f': 'f\n',
    },
  },
  {
    name: 'dockerignore',
    files: {
      Dockerfile: `${B}\nCOPY . /ctx\n`,
      '.dockerignore': '# comment\n*.log\n**/tmp\n!keep.log\n/build\n./secret\n',
      'a.log': 'x',
      'keep.log': 'k',
      'src/main.c': 'int main;',
      'src/tmp/junk': 'j',
      'build/out': 'o',
      secret: 's',
      'docs/readme': 'r',
    },
  },
  {
    name: 'dockerignore re-included file under an excluded dir, with --chmod and --chown',
    files: {
      Dockerfile: `${B}\nCOPY --chmod=700 . /ctx\nCOPY --chmod=640 --chown=5:5 . /ctx2\nCOPY --chmod=751 skip /skip\n`,
      '.dockerignore': 'skip\n!skip/keep\n!skip/deep/keep2\n',
      'skip/keep': 'k',
      'skip/drop': 'd',
      'skip/deep/keep2': 'k2',
      'skip/deep/drop2': 'd2',
      'other/x': 'x',
    },
  },
  {
    name: 'workdir user and metadata',
    files: {
      Dockerfile: `${B}\nWORKDIR /a/b\nWORKDIR c\nWORKDIR /tmp\nUSER 1000:1000\nRUN id > /tmp/id\nUSER root\nEXPOSE 80 443/udp 8000-8002\nVOLUME /data ["/logs"]\nSTOPSIGNAL SIGTERM\nLABEL a=b\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo hi"]\nMAINTAINER someone\n`,
    },
  },
  {
    name: 'shell and cmd forms',
    files: {
      Dockerfile: `${B}\nSHELL ["/bin/sh", "-e", "-c"]\nRUN echo $0 > /shell\nCMD echo shell form\nENTRYPOINT echo entry\n`,
    },
  },
  {
    name: 'entrypoint resets an inherited cmd',
    files: { Dockerfile: `${B} AS base\nCMD ["base-cmd"]\nFROM base\nENTRYPOINT ["/bin/echo"]\n` },
  },
  {
    name: 'healthcheck',
    files: {
      Dockerfile: `${B}\nHEALTHCHECK --interval=5s --timeout=3s --start-period=1m30s --retries=3 CMD wget -q -O- http://localhost/ || exit 1\n`,
    },
  },
  {
    name: 'healthcheck none and exec form',
    files: { Dockerfile: `${B} AS a\nHEALTHCHECK CMD ["true"]\nFROM a\nHEALTHCHECK NONE\n` },
  },
  {
    name: 'onbuild triggers',
    files: {
      Dockerfile: `${B} AS parent\nONBUILD RUN echo triggered > /onbuild\nONBUILD ENV FROM_TRIGGER=yes\nFROM parent\nRUN cat /onbuild > /seen\n`,
    },
  },
  {
    name: 'multi-stage with target and unused stages',
    files: {
      Dockerfile: `${B} AS unused\nRUN exit 1\nFROM busybox AS builder\nRUN echo built > /artifact\nFROM busybox AS other\nRUN echo other > /other\nFROM scratch AS final\nCOPY --from=builder /artifact /\nCOPY --from=1 /artifact /by-index\nCOPY --from=busybox /bin/busybox /busybox\nFROM final AS after\n`,
    },
    target: 'final',
  },
  {
    name: 'heredocs',
    skip: "the reference dockerd (20.10) predates heredocs; test/e2e/heredoc.test.ts checks tsbuild's against BuildKit's documented results",
    files: {
      Dockerfile: `${B}\nARG NAME=world\nRUN <<EOF\necho "hello $NAME" > /hello\necho two >> /hello\nEOF\nRUN <<-EOT\n\techo tabs stripped > /tabs\n\tEOT\nRUN cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB\nRUN <<'EOF'\necho '$NAME stays' > /quoted\nEOF\nRUN <<EOF\n#!/bin/sh\necho shebang > /shebang\nEOF\nCOPY <<EOF /copied\nname=$NAME\nEOF\nCOPY <<"EOF" /copied-raw\nname=$NAME\nEOF\n`,
    },
  },
  {
    name: 'add local archives',
    files: {
      Dockerfile: `${B}\nADD plain.txt /plain\nADD t.tar /tar/\nADD t.tar.gz /gz\nADD t.tar.bz2 /bz2/\nADD t.tar.xz /xz/\nADD --chown=7:8 t.tar /owned/\nCOPY t.tar.gz /copied-not-unpacked.tgz\n`,
      'plain.txt': 'not an archive\n',
      'content/a': 'a\n',
      'content/sub/b': 'b\n',
    },
    prepare: (dir) => {
      const tar = (args: string) => execFileSync('sh', ['-c', `cd ${dir} && tar --owner=12 --group=34 ${args} content && rm -f .keep`]);
      tar('-cf t.tar');
      tar('-czf t.tar.gz');
      tar('-cjf t.tar.bz2');
      tar('-cJf t.tar.xz');
    },
  },
  {
    name: 'deletions, whiteouts and opaque directories',
    files: {
      Dockerfile: `${B}\nRUN mkdir -p /a/b && echo 1 > /a/b/f && echo 2 > /a/g && ln /a/g /a/hard\nRUN rm /a/g && rm -rf /a/b && echo 3 > /a/h\nRUN rm -rf /a && mkdir /a && echo 4 > /a/i\nRUN rm -rf /etc/group && chmod 4755 /bin/busybox\n`,
    },
  },
  {
    name: 'escape directive and continuations',
    files: {
      Dockerfile: '# escape=`\nFROM busybox\nRUN echo one `\n    two `\n# a comment inside\n    three > /joined\nENV P=C:\\path\\to\n',
    },
  },
  {
    name: 'lowercase instructions and json fallback',
    files: { Dockerfile: `from busybox\nrun ["sh", "-c", "echo json > /j"]\nrun ['echo', 'not json'] > /notjson || true\ncmd [ "a", "b" ]\n` },
  },
  {
    name: 'rejected: unknown instruction',
    files: { Dockerfile: `${B}\nNOPE x\n` },
  },
  {
    name: 'rejected: copy of a missing file',
    files: { Dockerfile: `${B}\nCOPY missing /x\n` },
  },
  {
    name: 'rejected: run failure',
    files: { Dockerfile: `${B}\nRUN exit 3\n` },
  },
];

ownCases.push(
  {
    name: 'platform args and proxy args',
    files: {
      Dockerfile: `ARG TARGETARCH\nFROM busybox\nARG TARGETPLATFORM\nARG TARGETOS TARGETARCH BUILDPLATFORM\nRUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM [$HTTP_PROXY] [$UNDECLARED]" > /platform\n`,
    },
    buildArgs: ['HTTP_PROXY=http://127.0.0.1:3128', 'UNDECLARED=x'],
  },
  {
    name: 'copy --link',
    skip: 'the reference dockerd (20.10) predates COPY --link (Dockerfile 1.4); test/e2e/copy.test.ts checks it',
    files: {
      Dockerfile: `${B}\nRUN mkdir -p /real && ln -s /real /link && mkdir -m 700 /private\nCOPY --link a.txt /private/\nCOPY --link dir /fresh/dir\n`,
      'a.txt': 'a\n',
      'dir/f': 'f\n',
    },
  },
);

ownCases.push({
  // RUN --network is Dockerfile 1.3+, which the reference dockerd (20.10) predates: see test/e2e/run-mounts.test.ts
  name: 'run mounts',
  ignorePaths: [/^(cache|mnt|ctx|tmp\/t)$/],
  why: "dockerd 20.10's BuildKit leaves the empty directories it made as mount points in the layer; BuildKit 0.10+ (current Docker) removes these stubs, and tsbuild never creates them (its mount points live in the init layer)",
  files: {
    Dockerfile: `${B} AS tools\nRUN mkdir /out && echo built > /out/artifact\nFROM busybox\nRUN --mount=type=cache,target=/cache echo x > /cache/f && ls /cache > /cache-listing\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt cat /mnt/artifact > /got\nRUN --mount=target=/ctx cat /ctx/data > /from-context\nRUN --mount=type=tmpfs,target=/tmp/t echo y > /tmp/t/y && ls /tmp/t > /tmpfs-listing\n`,
    data: 'context data\n',
  },
});

ownCases.push(
  {
    name: 'expansion in every instruction docker expands',
    files: {
      Dockerfile: `${B}\nARG PORT=8080\nARG U=1000\nARG W=/srv/app\nARG V=/data\nARG S=SIGQUIT\nARG F=a.txt\nEXPOSE $PORT \${PORT}/udp\nWORKDIR $W\nCOPY --chown=$U:$U $F \${W}/copied-\${F}\nUSER \${U}:\${U}\nVOLUME $V\nSTOPSIGNAL $S\nLABEL port=$PORT dir="$W"\nENV HOME_DIR=$W\n`,
      'a.txt': 'a\n',
    },
  },
  {
    name: 'env and arg precedence',
    files: {
      Dockerfile: `${B}\nARG X=from-arg\nENV X=from-env\nRUN echo "$X" > /env-wins\nENV Y=from-env\nARG Y=from-arg\nRUN echo "$Y" > /later-arg\nARG Z\nRUN echo "[$Z]" > /unset-arg\n`,
    },
    buildArgs: ['X=cli', 'Y=cli-y'],
  },
);

ownCases.push(
  {
    name: 'hard links through COPY of the context, COPY --from and ADD of an archive',
    files: {
      Dockerfile: `${B} AS stage\nRUN mkdir /made && echo m > /made/one && ln /made/one /made/two\nFROM busybox\nCOPY tree /ctx/\nCOPY --from=stage /made /from/\nADD arch.tar /added/\nCOPY other/x other/y /separate/\nCOPY other/* /wild/\nCOPY . /all/\n`,
      'tree/a': 'a\n',
      'tree/sub/c': 'c\n',
      'other/x': 'x\n',
    },
    prepare: (dir) => {
      linkSync(path.join(dir, 'tree/a'), path.join(dir, 'tree/b'));
      linkSync(path.join(dir, 'tree/a'), path.join(dir, 'tree/sub/d'));
      linkSync(path.join(dir, 'other/x'), path.join(dir, 'other/y'));
      execFileSync('tar', ['-cf', path.join(dir, 'arch.tar'), '-C', path.join(dir, 'tree'), '.']);
    },
  },
  {
    name: 'mount targets under /etc and /dev: secret, cache, bind, tmpfs',
    secrets: { tok: 'token-value' },
    ignorePaths: [/^etc\/(app\.key|apt|apt\/x|ctx)$/],
    why: "dockerd 20.10's BuildKit leaves the mount points it made in the layer; BuildKit 0.10+ removes these stubs, and tsbuild never creates them",
    files: {
      Dockerfile: `${B}\nRUN --mount=type=secret,id=tok,target=/etc/app.key --mount=type=cache,target=/etc/apt/x --mount=type=bind,target=/etc/ctx cat /etc/app.key /etc/ctx/data > /seen-etc && touch /etc/apt/x/f && ls /etc/apt/x > /cache-listing\nRUN --mount=type=tmpfs,target=/dev/scratch --mount=type=secret,id=tok,target=/dev/tok --mount=type=bind,target=/dev/ctx cat /dev/tok /dev/ctx/data > /seen-dev && touch /dev/scratch/f && ls /dev/scratch > /tmpfs-listing\n`,
      data: 'context data\n',
    },
  },
);

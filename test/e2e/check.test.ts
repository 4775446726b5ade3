import { beforeAll, describe, expect, it } from 'vitest';
import { ok, tsbuild } from '../helpers/cli.js';
import { lacks } from '../helpers/env.js';
import { busyboxRootfsTar, context, tempDir } from '../helpers/fixtures.js';

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

describe.skipIf(lacks('root'))('build checks', () => {
  const root = tempDir('store-');
  beforeAll(async () => {
    await ok(root, ['import', busyboxRootfsTar(undefined, {}), 'busybox:1.36']);
  });

  it('--check lists every warning with its lines, builds nothing, and exits 1', async () => {
    const ctx = context({ Dockerfile: 'FROM busybox:1.36 as base\nCMD echo hi\n' });
    const r = await tsbuild(root, ['build', '--check', '.'], { cwd: ctx });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'Check complete, 2 warnings have been found!',
        '',
        'WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/',
        "'as' and 'FROM' keywords' casing do not match",
        'Dockerfile:1',
        '--------------------',
        '   1 | >>> FROM busybox:1.36 as base',
        '   2 |     CMD echo hi',
        '   3 |     ',
        '--------------------',
        '',
        'WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
        'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
        'Dockerfile:2',
        '--------------------',
        '   1 |     FROM busybox:1.36 as base',
        '   2 | >>> CMD echo hi',
        '   3 |     ',
        '--------------------',
      ].join('\n'), // (the CLI helper drops the last new line)
    );
    expect((await ok(root, ['images'])).stdout).not.toContain('sha256'); // nothing built
    expect((await tsbuild(root, ['build', '--call=check,ignorestatus=true', ctx])).code).toBe(0);
    const json = await tsbuild(root, ['build', '--call=check,format=json', ctx]);
    expect(JSON.parse(json.stdout).warnings.map((w: { ruleName: string }) => w.ruleName)).toEqual(['FromAsCasing', 'JSONArgsRecommended']);
  });

  it('--check without warnings says so and exits 0; error=true fails after the warnings', async () => {
    const clean = await tsbuild(root, ['build', '--check', context({ Dockerfile: 'FROM busybox:1.36\nCMD ["sh"]\n' })]);
    expect(clean).toMatchObject({ code: 0, stdout: 'Check complete, no warnings found.' });
    const strict = await tsbuild(root, ['build', '--check', context({ Dockerfile: '# check=error=true\nFROM busybox:1.36\nCMD sh\n' })]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain('WARNING: JSONArgsRecommended');
    expect(strict.stderr).toBe('tsbuild: lint violation found for rules: JSONArgsRecommended');
  });

  it('--check reads what COPY and ADD take from the context: ignored, key-like, not an archive', async () => {
    const ctx = context({
      Dockerfile: 'FROM busybox:1.36\nCOPY . /app\nADD notes.txt /notes.txt\nCOPY secret.txt /\n',
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 's',
      'notes.txt': 'hello',
      '.env': 'TOKEN=1',
      '.env.example': 'TOKEN=',
      'keys/id_rsa': KEY,
      'keys/id_rsa.pub': 'ssh-rsa AAAA',
      'certs/ca.pem': '-----BEGIN CERTIFICATE-----\n',
      '.npmrc': '//registry.npmjs.org/:_authToken=npm_abc\n',
    });
    const r = await tsbuild(root, ['build', '--check', ctx]);
    const warnings = [...r.stdout.matchAll(/^WARNING: (\S+).*\n(.*)$/gm)].map((m) => `${m[1]}: ${m[2]}`);
    expect(warnings).toEqual([
      'SecretFileCopied: COPY copies .env (an environment file) into the image (and 2 more key-like files)',
      'AddNotArchive: ADD of notes.txt, which is not an archive: it only copies',
      'CopyIgnoredFile: Attempting to Copy file "secret.txt" that is excluded by .dockerignore',
    ]);
  });

  it('a build tells the warnings at the end: the BuildKit rules, key-like files, ADD of a plain file, and the bytes a later step deletes', async () => {
    const ctx = context({
      Dockerfile: [
        'FROM busybox:1.36',
        'ADD notes.txt /notes.txt',
        'COPY . /app',
        'RUN head -c 3000000 /dev/zero > /big && head -c 2000000 /dev/zero > /big2 && echo made',
        'RUN rm /big /big2',
        'CMD ["sh"]',
      ].join('\n'),
      'notes.txt': 'hello',
      'keys/id_ed25519': KEY,
    });
    const r = await ok(root, ['build', '--progress=plain', '-t', 'checked', ctx]);
    expect(r.stderr.slice(r.stderr.indexOf('\n 3 warnings found'))).toBe(
      [
        '\n 3 warnings found (use tsbuild build --check to expand):',
        ' - AddNotArchive: ADD of notes.txt, which is not an archive: it only copies (line 2)',
        ' - SecretFileCopied: COPY copies keys/id_ed25519 (a private key) into the image (line 3)',
        ' - WastedBytes: 5MB in 2 files (the largest: /big, 3MB) added at line 4 are deleted or overwritten at line 5: the image still carries them (line 4)',
      ].join('\n'),
    );
    // a cached build tells them again, without reading the layers' files
    const again = await ok(root, ['build', '--progress=plain', '-t', 'checked', ctx]);
    expect(again.stderr).toContain(' - WastedBytes: 5MB in 2 files');
  });

  it('error=true fails the build before any step runs', async () => {
    const r = await tsbuild(root, ['build', '--progress=plain', context({ Dockerfile: '# check=error=true\nFROM busybox:1.36 as b\nRUN touch /x\n' })]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('RUN touch');
    expect(r.stderr).toContain(" - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 2)");
    expect(r.stderr.trim().split('\n').at(-1)).toBe('tsbuild: lint violation found for rules: FromAsCasing');
  });
});

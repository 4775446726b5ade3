// SecretFileCopied and AddNotArchive: what COPY and ADD take from the build context.
import type { CopyInstruction } from '../../dockerfile/instructions.js';
import type { CheckInput } from '../input.js';
import { RULES } from '../rules.js';

const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----/;
const NPM_TOKEN = /^\s*(?:\/\/[^\n]*:)?_(?:authToken|auth|password)\s*=\s*\S/m;
const KEY_STORES = /\.(p12|pfx|jks|keystore)$/i;
const ENV_EXAMPLES = /^\.env\.(example|sample|template|dist|defaults)$/i;
/** Every name the tests below may take: one test rules out the rest. */
const MAYBE = /^(id_|\.env|\.npmrc$|\.netrc$|\.git-credentials$|\.pypirc$|credentials$|config\.json$)|\.(pem|key|p12|pfx|jks|keystore)$/i;

/** What makes a file key-like, by its name and (for a few names) its first bytes; undefined when it is not. */
export function keyLikeKind(path: string, read: () => Buffer): string | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (!MAYBE.test(name)) return undefined; // most names: one test
  if (/^id_(rsa|dsa|ecdsa|ed25519)(_sk)?$/.test(name) || /\.(pem|key)$/i.test(name)) {
    return PRIVATE_KEY.test(read().toString('latin1')) ? 'a private key' : undefined;
  }
  if (KEY_STORES.test(name)) return 'a key store';
  if ((name === '.env' || name.startsWith('.env.')) && !ENV_EXAMPLES.test(name)) return 'an environment file';
  if (name === '.npmrc') return NPM_TOKEN.test(read().toString('utf8')) ? 'an .npmrc with a token' : undefined;
  if (name === '.netrc' || name === '.git-credentials' || name === '.pypirc') return 'credentials';
  if (path.endsWith('.aws/credentials') || path.endsWith('.docker/config.json')) return 'credentials';
  return undefined;
}

/** The SecretFileCopied message for the key-like files a COPY takes. */
export function secretFilesMessage(ins: Pick<CopyInstruction, 'keyword'>, found: ReadonlyArray<{ path: string; kind: string }>): string {
  const [first] = found;
  const more = found.length > 1 ? ` (and ${found.length - 1} more key-like file${found.length > 2 ? 's' : ''})` : '';
  return `${ins.keyword} copies ${first!.path} (${first!.kind}) into the image${more}`;
}

/** The AddNotArchive message: ADD whose local sources are files none of which is an archive. */
export function addNotArchiveMessage(sources: readonly string[]): string {
  return `ADD of ${sources.join(', ')}, which ${sources.length > 1 ? 'are not archives' : 'is not an archive'}: it only copies`;
}

const HEAD = 4096;
const isLocal = (src: string) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(src) && !src.startsWith('git@');

/** Both rules over the context (`--check`: a build tells them from its COPY and ADD steps). */
export async function contextFileRules(input: CheckInput): Promise<void> {
  const context = input.context;
  if (!context) return;
  for (const stage of input.stages) {
    for (const ins of stage.instructions) {
      if ((ins.keyword !== 'COPY' && ins.keyword !== 'ADD') || ins.from !== undefined) continue;
      const local = ins.sources.filter(isLocal);
      const found: Array<{ path: string; kind: string }> = [];
      const files: string[] = [];
      let dirs = false;
      for (const src of local) {
        for (const e of context.sources(src)) {
          if (e.dir) {
            dirs = true;
            continue;
          }
          files.push(e.path);
          const kind = keyLikeKind(e.path, () => context.head(e.path, HEAD));
          if (kind) found.push({ path: e.path, kind });
        }
      }
      if (found.length > 0) input.linter.warn(RULES.SecretFileCopied, secretFilesMessage(ins, found), ins.location);
      if (ins.keyword === 'ADD' && ins.unpack !== true && local.length === ins.sources.length && !dirs && files.length > 0) {
        let archives = 0;
        for (const f of files) if (await context.isArchive(f)) archives++;
        if (archives === 0) input.linter.warn(RULES.AddNotArchive, addNotArchiveMessage(local), ins.location);
      }
    }
  }
}

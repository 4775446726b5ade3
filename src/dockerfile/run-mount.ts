// RUN --mount: its fields split at parse time, then expanded and typed as BuildKit's parseMount.
import { parseSize } from '../util/units.js';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { didYouMean } from '../util/suggest.js';

/** A `RUN --mount=...` as BuildKit reads it (frontend/dockerfile/instructions/commands_runmount.go). */
export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target?: string;
  source?: string;
  from?: string;
  readOnly: boolean;
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs size in bytes. */
  size?: number;
  required?: boolean;
  /** secret: expose as this environment variable instead of (or as well as) a file. */
  env?: string;
}

const TYPES = new Set(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const SHARING = new Set(['shared', 'private', 'locked']);

function parseBool(v: string): boolean | undefined {
  const l = v.toLowerCase();
  if (['1', 't', 'true'].includes(l)) return true;
  if (['0', 'f', 'false'].includes(l)) return false;
  return undefined;
}

/** Splits `a=b,"c=d,e",f` as a CSV record. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') {
      if (quoted && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.filter((f) => f !== '');
}

/** A `RUN --mount` as written, its fields split once when the Dockerfile is parsed. */
export interface RunMountSpec {
  /** Each CSV field: its key (lower-case), and its value as written (none for a bare `ro`, `rw`, `required`). */
  fields: Array<{ key: string; value?: string }>;
  /** `from=` as written (a stage or an image): what the stage graph follows. */
  from?: string;
}

const KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw', 'required', 'size', 'id', 'sharing', 'mode', 'uid', 'gid', 'env'];
const BARE = new Set(['readonly', 'ro', 'readwrite', 'rw', 'required']);

/** Splits one --mount value into its fields (BuildKit's parse-time pass: keys checked, values left for expansion). */
export function parseRunMountSpec(text: string, location: SourceLocation): RunMountSpec {
  const fields = csvFields(text).map((field) => {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0 && !BARE.has(key)) throw new DockerfileError(`invalid field '${field}' must be a key=value pair`, { location });
    if (!KEYS.includes(key)) throw new DockerfileError(didYouMean(`unexpected key '${key}' in '${field}'`, key, KEYS), { location });
    return eq < 0 ? { key } : { key, value: field.slice(eq + 1) };
  });
  return { fields, from: fields.find((f) => f.key === 'from')?.value };
}

/**
 * A mount with the stage's variables applied to its values (`expand`), typed and checked as
 * BuildKit's parseMount does with an expander.
 */
export function expandRunMount(spec: RunMountSpec, expand: (s: string) => string, location: SourceLocation): RunMount {
  const fail = (msg: string): never => {
    throw new DockerfileError(msg, { location });
  };
  const m: RunMount = { type: 'bind', readOnly: true };
  let roAuto = true;
  for (const { key, value } of spec.fields) {
    const field = value === undefined ? key : `${key}=${value}`;
    if (value === undefined) {
      if (key === 'readonly' || key === 'ro') [m.readOnly, roAuto] = [true, false];
      else if (key === 'readwrite' || key === 'rw') [m.readOnly, roAuto] = [false, false];
      else if (key === 'required' && (m.type === 'secret' || m.type === 'ssh')) m.required = true;
      else fail(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const v = expand(value);
    const bool = () => parseBool(v) ?? fail(`invalid value for ${key}: ${v}`);
    const num = (radix: number) => {
      const n = parseInt(v, radix);
      return Number.isNaN(n) || !/^\d+$/.test(v) ? fail(`invalid value ${v} for ${key}`) : n;
    };
    switch (key) {
      case 'type':
        if (!TYPES.has(v.toLowerCase())) fail(`unsupported mount type "${v}"`);
        m.type = v.toLowerCase() as RunMount['type'];
        break;
      case 'from':
        m.from = v;
        break;
      case 'source':
      case 'src':
        m.source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = v;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = bool();
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !bool();
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') fail(`unexpected key 'required' for mount type '${m.type}'`);
        m.required = bool();
        break;
      case 'size':
        if (m.type !== 'tmpfs') fail(`unexpected key 'size' for mount type '${m.type}'`);
        m.size = parseSize(v) ?? fail(`invalid value for size: ${v}`);
        break;
      case 'id':
        m.id = v;
        break;
      case 'sharing':
        if (!SHARING.has(v.toLowerCase())) fail(`unsupported sharing value "${v}"`);
        m.sharing = v.toLowerCase() as RunMount['sharing'];
        break;
      case 'mode':
        m.mode = num(8);
        break;
      case 'uid':
        m.uid = num(10);
        break;
      case 'gid':
        m.gid = num(10);
        break;
      case 'env':
        m.env = v;
        break;
      default:
        fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  const fileInfo = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfo && (m.mode !== undefined || m.uid !== undefined || m.gid !== undefined)) {
    fail(`${m.mode !== undefined ? 'mode' : m.uid !== undefined ? 'uid' : 'gid'} not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret' || m.type === 'ssh') {
    if (m.from) fail(`secret and ssh mounts do not support "from"`);
    if (m.type === 'secret' && !m.id && !m.target) fail('secret mount requires an id or a target');
  } else if (!m.target) fail('mount destination (target) is required');
  if (m.type === 'cache' && m.sharing === undefined) m.sharing = 'shared';
  return m;
}

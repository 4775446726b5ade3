import { parseSize } from '../util/units.js';
import { DockerfileError, type SourceLocation } from '../errors.js';

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

/** Parses one --mount value; `expand` applies the stage's variables to each value. */
export function parseRunMount(value: string, expand: (s: string) => string, location: SourceLocation): RunMount {
  const fail = (msg: string): never => {
    throw new DockerfileError(msg, { location });
  };
  const m: RunMount = { type: 'bind', readOnly: true };
  let roAuto = true;
  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') [m.readOnly, roAuto] = [true, false];
      else if (key === 'readwrite' || key === 'rw') [m.readOnly, roAuto] = [false, false];
      else if (key === 'required' && (m.type === 'secret' || m.type === 'ssh')) m.required = true;
      else fail(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const v = expand(field.slice(eq + 1));
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

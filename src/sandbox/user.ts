// USER resolved to uid, gid and groups from the image's passwd and group files.
import { TsbuildError } from '../errors.js';

/** The identity a RUN step runs as, resolved as runc does from the image's /etc/passwd and /etc/group. */
export interface ExecUser {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  return (text ?? '')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 6 && f[0] !== '' && !f[0]!.startsWith('#'))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' }));
}

function parseGroup(text: string | undefined): GroupEntry[] {
  return (text ?? '')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && f[0] !== '' && !f[0]!.startsWith('#'))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

const NUMERIC = /^\d+$/;

/**
 * Resolves `USER name|uid[:group|gid]`. A name must exist in /etc/passwd; a uid need not (then gid 0,
 * home /). Supplementary groups come from /etc/group membership when no group was given.
 */
export function resolveUser(spec: string | undefined, readFile: (p: string) => string | undefined): ExecUser {
  const [userPart = '', groupPart] = (spec ?? '').split(':', 2);
  if (userPart === '' && !groupPart) return withGroups({ uid: 0, gid: 0, name: 'root', home: '/root' }, undefined, readFile, true);
  const passwd = parsePasswd(readFile('/etc/passwd'));
  let entry: PasswdEntry | undefined;
  if (NUMERIC.test(userPart)) {
    entry = passwd.find((p) => p.uid === Number(userPart)) ?? { name: '', uid: Number(userPart), gid: 0, home: '/' };
  } else if (userPart === '') {
    entry = { name: 'root', uid: 0, gid: 0, home: '/root' };
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new TsbuildError(`unable to find user ${userPart}: no matching entries in passwd file`);
  }
  return withGroups(entry, groupPart, readFile, entry.name !== '');
}

function withGroups(user: PasswdEntry, groupPart: string | undefined, readFile: (p: string) => string | undefined, named: boolean): ExecUser {
  const result: ExecUser = { uid: user.uid, gid: user.gid, groups: [], home: user.home };
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) result.gid = Number(groupPart);
    else {
      const g = parseGroup(readFile('/etc/group')).find((x) => x.name === groupPart);
      if (!g) throw new TsbuildError(`unable to find group ${groupPart}: no matching entries in group file`);
      result.gid = g.gid;
    }
    return result;
  }
  if (named) {
    result.groups = parseGroup(readFile('/etc/group'))
      .filter((g) => g.members.includes(user.name))
      .map((g) => g.gid);
  }
  return result;
}

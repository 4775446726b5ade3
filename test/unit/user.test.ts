import { describe, expect, it } from 'vitest';
import { resolveUser } from '../../src/sandbox/user.js';

const files: Record<string, string> = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n',
  '/etc/group': 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nwheel:x:10:root,app\n',
};
const read = (p: string) => files[p];

describe('USER is resolved through the image\'s passwd and group files', () => {
  it.each([
    ['', { uid: 0, gid: 0, groups: [10], home: '/root' }],
    ['root', { uid: 0, gid: 0, groups: [10], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, groups: [2000, 10], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, groups: [2000, 10], home: '/home/app' }],
    ['app:extra', { uid: 1000, gid: 2000, groups: [], home: '/home/app' }],
    ['4242', { uid: 4242, gid: 0, groups: [], home: '/' }],
    ['4242:77', { uid: 4242, gid: 77, groups: [], home: '/' }],
  ])('%j', (spec, expected) => {
    expect(resolveUser(spec, read)).toEqual(expected);
  });

  it('names the user that does not exist', () => {
    expect(() => resolveUser('ghost', read)).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => resolveUser('app:ghosts', read)).toThrow('unable to find group ghosts');
  });
});

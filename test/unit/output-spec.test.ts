import { describe, expect, it } from 'vitest';
import { parseOutputSpec, splitCsv } from '../../src/archive/output-spec.js';

describe('-o parsing', () => {
  const gz6 = { algorithm: 'gzip', level: 6 } as const;
  const ok: Array<[string, ReturnType<typeof parseOutputSpec>]> = [
    ['image.tar', { type: 'docker', dest: 'image.tar', compression: undefined, mediaTypes: 'oci' }],
    ['type=docker,dest=out.tar', { type: 'docker', dest: 'out.tar', compression: gz6, mediaTypes: 'docker' }],
    ['type=oci,dest=out.tar', { type: 'oci', dest: 'out.tar', compression: gz6, mediaTypes: 'oci' }],
    ['type=docker,dest=out.tar,compression=uncompressed', { type: 'docker', dest: 'out.tar', compression: undefined, mediaTypes: 'docker' }],
    ['type=docker,dest=-,compression=gzip,compression-level=1', { type: 'docker', dest: '-', compression: { algorithm: 'gzip', level: 1 }, mediaTypes: 'docker' }],
    ['type=docker,dest=o.tar,oci-mediatypes=true', { type: 'docker', dest: 'o.tar', compression: gz6, mediaTypes: 'oci' }],
    ['type=oci,dest=o.tar,force-compression=true,oci-mediatypes=false', { type: 'oci', dest: 'o.tar', compression: gz6, mediaTypes: 'docker' }],
    ['type=docker,dest=o.tar,"name=a:1,b:2"', { type: 'docker', dest: 'o.tar', compression: gz6, mediaTypes: 'docker', names: ['a:1', 'b:2'] }],
    ['type=docker,"dest=a b,c.tar"', { type: 'docker', dest: 'a b,c.tar', compression: gz6, mediaTypes: 'docker' }],
    ['type=registry,name=localhost:5000/app:1', { type: 'registry', names: ['localhost:5000/app:1'], compression: 'gzip', mediaTypes: 'docker' }],
    ['type=image,name=r/a:1,push=true,compression=zstd', { type: 'registry', names: ['r/a:1'], compression: 'zstd', mediaTypes: 'oci' }],
    ['type=registry,name=r/a:1,compression=uncompressed,oci-mediatypes=true', { type: 'registry', names: ['r/a:1'], compression: 'uncompressed', mediaTypes: 'oci' }],
  ];
  it.each(ok)('%s', (value, expected) => {
    expect(parseOutputSpec(value)).toEqual(expected);
  });

  const bad: Array<[string, string]> = [
    ['', 'invalid -o "": expected a file name or type=docker|oci,dest=FILE'],
    ['dest=x', 'invalid -o "dest=x": type= is required (docker or oci)'],
    ['type=local,dest=dir', '-o type=local is not supported yet (supported: docker, oci, registry)'],
    ['type=registry', '-o type=registry needs name=REF (the repository and tag to push to)'],
    ['type=image,name=x', '-o type=image without push=true would only name the image in a daemon\'s store: use -t, or push=true'],
    ['type=registry,name=x,compression=lz4', 'invalid -o "type=registry,name=x,compression=lz4": unknown compression "lz4" (gzip, zstd or uncompressed)'],
    ['type=zip,dest=x', 'invalid -o "type=zip,dest=x": unknown output type "zip"'],
    ['type=docker', '-o type=docker needs dest=FILE (or dest=- for standard output): there is no Docker daemon to load it into'],
    ['type=docker,dest=x,compression=zstd', '-o compression=zstd is not supported yet (supported: gzip, uncompressed)'],
    ['type=docker,dest=x,compression=lz4', 'invalid -o "type=docker,dest=x,compression=lz4": unknown compression "lz4"'],
    ['type=docker,dest=x,compression-level=10', 'invalid -o "type=docker,dest=x,compression-level=10": compression-level must be 0 to 9 for gzip'],
    ['type=docker,dest=x,compression=uncompressed,compression-level=3', 'invalid -o "type=docker,dest=x,compression=uncompressed,compression-level=3": compression-level needs compression=gzip'],
    ['type=docker,dest="a b.tar"', 'invalid -o "type=docker,dest="a b.tar"": a " may only open a field ("dest=a b.tar" quotes a whole field)'],
    ['type=docker,"dest=a"b', 'invalid -o "type=docker,"dest=a"b": text after a closing "'],
    ['type=docker,dest=x,force-compression=maybe', 'invalid -o "type=docker,dest=x,force-compression=maybe": force-compression must be true or false, not "maybe"'],
    ['type=docker,dest=x,push=true', 'invalid -o "type=docker,dest=x,push=true": unknown attribute "push" for type=docker'],
    ['type=docker,dest', 'invalid -o "type=docker,dest": "dest" is not KEY=VALUE'],
    ['type=docker,"dest=x', 'invalid -o "type=docker,"dest=x": unterminated quote'],
  ];
  it.each(bad)('rejects %s', (value, message) => {
    expect(() => parseOutputSpec(value)).toThrow(message);
  });

  it('splits CSV as encoding/csv does', () => {
    expect(splitCsv('a=1,"b=2,3","c=x""y"')).toEqual(['a=1', 'b=2,3', 'c=x"y']);
  });
});

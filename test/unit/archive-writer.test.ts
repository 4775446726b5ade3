import { createHash } from 'node:crypto';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { writeImageArchive } from '../../src/archive/archive-writer.js';
import { scratchConfig, serializeConfig } from '../../src/image/config.js';
import type { Image, Layer } from '../../src/image/image.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../../src/layer/tar-format.js';
import { sha256 } from '../../src/util/digest.js';
import { put } from '../../src/util/sink.js';
import { flattenArchive } from '../helpers/flatten.js';
import { tempDir } from '../helpers/fixtures.js';

/** A layer held in memory: one file. */
function memoryLayer(name: string, content: string): Layer {
  const data = Buffer.from(content);
  const tar = Buffer.concat([encodeHeader({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0 }), data, paddingFor(data.length), END_OF_ARCHIVE]);
  return {
    diffId: sha256(tar),
    size: tar.length,
    uncompressed: (sink) => put(sink, tar),
    gzip: async () => {
      const gz = gzipSync(tar);
      return { digest: sha256(gz), size: gz.length, write: (sink) => put(sink, gz) };
    },
  };
}

function memoryImage(layers: Layer[]): Image {
  const config = { ...scratchConfig(), rootfs: { type: 'layers' as const, diff_ids: layers.map((l) => l.diffId) }, history: layers.map(() => ({ created_by: 'in memory' })) };
  const configBytes = serializeConfig(config);
  return { id: sha256(configBytes), configBytes, config, layers };
}

describe('the archive writer takes any image, not only a stored one', () => {
  const image = memoryImage([memoryLayer('a.txt', 'first\n'), memoryLayer('b.txt', 'second\n')]);

  it.each([['uncompressed', undefined], ['gzip', { algorithm: 'gzip' as const, level: 6 }]])('%s layers', async (_, compression) => {
    const dir = tempDir('archive-');
    const file = path.join(dir, 'image.tar');
    await writeImageArchive([{ image, names: ['memory:1'] }], file, { compression });
    const flat = await flattenArchive(file, path.join(dir, 'x'));
    expect(flat.files.get('a.txt')?.digest).toBe(createHash('sha256').update('first\n').digest('hex'));
    expect(flat.files.get('b.txt')?.digest).toBe(createHash('sha256').update('second\n').digest('hex'));
    expect(sha256(serializeConfig(flat.config as never))).toBe(image.id);
  });
});

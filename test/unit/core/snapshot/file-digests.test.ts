import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyFilesHashing, copySparse, sha256Files } from '../../../../core/snapshot/file-digests.js';

describe('file digests (hashed on a worker thread)', () => {
  let dir = '';
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('gives the SHA-256 of each file, in order, across read chunks', async () => {
    dir = await mkdtemp(join(tmpdir(), 'digests-'));
    const bodies = [randomBytes(3 * (1 << 20) + 17), Buffer.alloc(0), Buffer.from('x')];
    const paths = bodies.map((_, i) => join(dir, `f${i}`));
    await Promise.all(bodies.map((b, i) => writeFile(paths[i]!, b)));
    expect(await sha256Files(paths)).toEqual(bodies.map((b) => createHash('sha256').update(b).digest('hex')));
  });

  it('rejects with the cause when a file cannot be read', async () => {
    dir = await mkdtemp(join(tmpdir(), 'digests-'));
    await expect(sha256Files([join(dir, 'missing')])).rejects.toThrow(/ENOENT/);
  });

  it('copies nested files and records the digests of what it copied', async () => {
    dir = await mkdtemp(join(tmpdir(), 'digests-'));
    const body = randomBytes(5000);
    const src = join(dir, 'src');
    await mkdir(join(src, 'seg'), { recursive: true });
    await writeFile(join(src, 'seg', 'a.bin'), body);
    const got = await copyFilesHashing(src, join(dir, 'dst'), ['seg/a.bin']);
    expect(got.get('seg/a.bin')).toBe(createHash('sha256').update(body).digest('hex'));
    expect((await sha256Files([join(dir, 'dst', 'seg', 'a.bin')]))[0]).toBe(got.get('seg/a.bin'));
  });
});

describe('sparse copy', () => {
  it('leaves all-zero blocks out as holes and copies the rest byte for byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparse-'));
    try {
      const body = Buffer.alloc(8 << 20);
      randomBytes(70_000).copy(body, 3 << 20);
      body[body.length - 1] = 7;
      await writeFile(join(dir, 'src'), body);
      await copySparse(join(dir, 'src'), join(dir, 'dst'));
      expect((await readFile(join(dir, 'dst'))).equals(body)).toBe(true);
      // Two data regions of a few 64 KiB blocks are allocated, not 8 MiB.
      expect((await stat(join(dir, 'dst'))).blocks * 512).toBeLessThan(1 << 20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

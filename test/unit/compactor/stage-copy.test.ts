import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyWhileRestarting } from '../../../compactor/stage-copy.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stage-copy-'));
  await mkdir(join(dir, 'src', 'seg-1'), { recursive: true });
  await writeFile(join(dir, 'src', 'chroma.sqlite3'), 'sqlite bytes');
  await writeFile(join(dir, 'src', 'seg-1', 'data_level0.bin'), Buffer.alloc(3 << 20, 7));
  await writeFile(join(dir, 'src', 'seg-1', 'header.bin'), 'header');
  await writeFile(join(dir, 'src', 'skip-me.json'), '{}');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('copyWhileRestarting', () => {
  it('copies every file byte for byte with its SHA-256, top-level files before the restart begins', async () => {
    const src = join(dir, 'src');
    const dest = join(dir, 'dest');
    let sqliteAtRestart: string | undefined;
    const digests = await copyWhileRestarting(
      src,
      dest,
      async () => {
        sqliteAtRestart = await readFile(join(dest, 'chroma.sqlite3'), 'utf8');
        // What Chroma does on start: it writes its SQLite file. The copy already holds the bytes from before.
        await writeFile(join(src, 'chroma.sqlite3'), 'touched on start');
      },
      ['skip-me.json'],
    );
    expect(sqliteAtRestart).toBe('sqlite bytes');
    expect([...digests.keys()].sort()).toEqual([
      'chroma.sqlite3',
      'seg-1/data_level0.bin',
      'seg-1/header.bin',
    ]);
    for (const [rel, h] of digests) expect(sha(await readFile(join(dest, rel)))).toBe(h);
    expect(digests.get('chroma.sqlite3')).toBe(sha('sqlite bytes'));
  });

  it('refuses the copy when the restarted server changes a segment file meanwhile', async () => {
    const src = join(dir, 'src');
    await expect(
      copyWhileRestarting(src, join(dir, 'dest'), async () => {
        await writeFile(join(src, 'seg-1', 'header.bin'), 'persisted during the copy');
      }),
    ).rejects.toThrow(/seg-1\/header\.bin changed while it was copied/);
  });

  it('refuses the copy when a segment file appears meanwhile, and reports a failed restart', async () => {
    const src = join(dir, 'src');
    await expect(
      copyWhileRestarting(src, join(dir, 'dest'), async () => {
        await writeFile(join(src, 'seg-1', 'link_lists.bin'), 'new');
      }),
    ).rejects.toThrow(/link_lists\.bin changed while it was copied/);
    await expect(
      copyWhileRestarting(src, join(dir, 'dest2'), () => Promise.reject(new Error('validation failed'))),
    ).rejects.toThrow('validation failed');
  });
});

import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import { archiveKey, restoreSnapshot, snapshotPrefix } from '../../../../core/snapshot/s3-snapshot.js';
import { extractArchive, UnsafeArchiveError } from '../../../../core/snapshot/safe-extract.js';
import { copyVersion, VersionDamagedError } from '../../../../core/snapshot/volume.js';
import { pythonTarGz, type TarEntry } from '../../../support/tar-fixtures.js';

const archive = pythonTarGz;

async function refused(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnsafeArchiveError);
  expect((err as UnsafeArchiveError).reason).toBe('SnapshotDamaged');
  return (err as Error).message;
}

const fresh = () => join(mkdtempSync(join(tmpdir(), 'dest-')), 'out');

describe('snapshot archive extraction (issue 18 item 7)', () => {
  it('extracts files and directories, and strips setuid/setgid/sticky bits', async () => {
    const dest = fresh();
    await extractArchive(
      archive([
        ['seg', 'dir', undefined, 0o1777],
        ['seg/data.bin', 'file', 'vectors', 0o6755],
        ['chroma.sqlite3', 'file', 'db'],
      ]),
      dest,
      'ok.tar.gz',
    );
    expect(readFileSync(join(dest, 'seg', 'data.bin'), 'utf8')).toBe('vectors');
    expect(lstatSync(join(dest, 'seg', 'data.bin')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(dest, 'seg')).mode & 0o7000).toBe(0);
  });

  it('refuses the symlink chain that passed strict mode, writing nothing', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    writeFileSync(join(outside, 'target.txt'), 'secret');
    const dest = fresh();
    const msg = await refused(
      extractArchive(
        archive([
          ['d', 'dir'],
          ['d/x', 'symlink', '..'],
          ['a', 'symlink', `d/x/../${outside.split('/').pop()}/target.txt`],
        ]),
        dest,
        'chain.tar.gz',
      ),
    );
    expect(msg).toMatch(/"d\/x" is a SymbolicLink \(only files and directories\)/);
    expect(existsSync(dest)).toBe(false);
  });

  it.each([
    [
      'a hardlink',
      [
        ['f', 'file', 'x'],
        ['h', 'hardlink', 'f'],
      ],
      /is a Link/,
    ],
    ['a FIFO', [['p', 'fifo']], /is a FIFO/],
    ['a character device', [['c', 'chr']], /is a CharacterDevice/],
    ['a ../ path', [['../escape', 'file', 'x']], /leaves the extraction directory/],
  ] as const)('refuses %s', async (_what, entries, problem) => {
    const dest = fresh();
    expect(await refused(extractArchive(archive(entries as never), dest, 'bad.tar.gz'))).toMatch(problem);
    expect(existsSync(dest)).toBe(false);
  });

  it('caps the entry count and the unpacked bytes before writing anything', async () => {
    const many = archive(Array.from({ length: 12 }, (_, i): TarEntry => [`f${i}`, 'file', 'x']));
    const dest = fresh();
    expect(await refused(extractArchive(many, dest, 'many', { maxEntries: 10, maxBytes: 1e9 }))).toMatch(
      /more than 10 entries/,
    );
    const big = archive([['big', 'file', 'y'.repeat(5000)]]);
    expect(await refused(extractArchive(big, dest, 'big', { maxEntries: 10, maxBytes: 4096 }))).toMatch(
      /more than 4096 bytes unpacked/,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it('restore requires the .sha256 beside the archive, and caps the archive size before downloading', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    mkdirSync(join(root, 'vectors'));
    const store = new DirectoryObjectStore(root);
    const file = archive([['chroma.sqlite3', 'file', 'db']]);
    const bytes = readFileSync(file);
    await store.put('vectors', archiveKey('lines', 'v1'), bytes);
    const dest = fresh();
    await expect(restoreSnapshot(store, 'vectors', 'lines', dest, 'v1')).rejects.toThrow(
      /snapshot archive s3:\/\/vectors\/lines\/snapshot\/timestamped\/v1\/snapshot\.tar\.gz has no snapshot\.tar\.gz\.sha256/,
    );
    expect(existsSync(dest)).toBe(false);
    const sha = createHash('sha256').update(bytes).digest('hex');
    await store.put('vectors', `${snapshotPrefix('lines', 'v1')}snapshot.tar.gz.sha256`, `${sha}\n`);
    await expect(
      restoreSnapshot(store, 'vectors', 'lines', dest, 'v1', {
        maxArchiveBytes: 10,
        maxEntries: 10,
        maxBytes: 1e6,
      }),
    ).rejects.toThrow(/over the 10-byte limit/);
    expect(existsSync(dest)).toBe(false);
    expect(await restoreSnapshot(store, 'vectors', 'lines', dest, 'v1')).toEqual({ version: 'v1' });
    expect(readdirSync(dest)).toEqual(['chroma.sqlite3']);
  });

  it('a version directory holding a symlink is damaged: copies never follow it out', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    writeFileSync(join(outside, 'token'), 'secret');
    const src = mkdtempSync(join(tmpdir(), 'version-'));
    writeFileSync(join(src, 'chroma.sqlite3'), 'db');
    symlinkSync(join(outside, 'token'), join(src, 'a'));
    const dest = fresh();
    const err = await copyVersion(src, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionDamagedError);
    expect((err as Error).message).toContain(`${join(src, 'a')} is not a regular file or directory`);
    expect(existsSync(join(dest, 'a'))).toBe(false);
  });
});

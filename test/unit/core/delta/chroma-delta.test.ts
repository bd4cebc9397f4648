// Issue 15 item 3: the original system's Chroma-directory deltas, fetched into a bounded directory in either layout;
// every hostile or broken delta is a DeltaCorrupt naming the problem, and leaves nothing behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { deltaBase, fetchChromaDelta, type ChromaDeltaLimits } from '../../../../core/delta/chroma-delta.js';
import { PipelineError, SourceMissingError } from '../../../../core/errors.js';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import type { ObjectInfo, ObjectStore } from '../../../../core/ports/object-store.js';
import { pythonTarGz, type TarEntry } from '../../../support/tar-fixtures.js';

const LIMITS: ChromaDeltaLimits = { maxArchiveBytes: 1e6, maxBytes: 1e6, maxEntries: 50 };
const BUCKET = 'vectors';
const PREFIX = 'lines/delta/0b4c7f1e-9a7d-4a53-8f5e-2d1c3b4a5e6f';

function dirStore(): DirectoryObjectStore {
  const root = mkdtempSync(join(tmpdir(), 'store-'));
  mkdirSync(join(root, BUCKET));
  return new DirectoryObjectStore(root);
}

/** A pure in-memory store: keys the directory store cannot hold (`..` segments) are what a hostile S3 listing gives. */
function memoryStore(objects: Record<string, string>): ObjectStore {
  const info = (key: string): ObjectInfo => ({ key, size: Buffer.byteLength(objects[key]!) });
  return {
    getStream: async (_b, key) => Readable.from([Buffer.from(objects[key]!)]),
    getBuffer: async (_b, key) => Buffer.from(objects[key]!),
    head: async (_b, key) => (key in objects ? info(key) : undefined),
    put: async () => undefined,
    list: async (_b, prefix) =>
      Object.keys(objects)
        .filter((k) => k.startsWith(prefix))
        .map(info),
    delete: async () => undefined,
  };
}

const fresh = () => join(mkdtempSync(join(tmpdir(), 'delta-')), 'run-lines');

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PipelineError);
  expect((err as PipelineError).reason).toBe('DeltaCorrupt');
  return (err as Error).message;
}

async function withArchive(entries: TarEntry[] | Buffer): Promise<DirectoryObjectStore> {
  const store = dirStore();
  const bytes = Buffer.isBuffer(entries) ? entries : readFileSync(pythonTarGz(entries));
  await store.put(BUCKET, `${PREFIX}/delta.tar.gz`, bytes);
  return store;
}

describe('the prefix a run records', () => {
  it.each([
    [PREFIX, PREFIX],
    [`${PREFIX}/`, PREFIX],
    [`/${PREFIX}/`, PREFIX],
    [`s3://${BUCKET}/${PREFIX}/`, PREFIX],
  ])('%s names %s', (recorded, base) => expect(deltaBase(recorded, BUCKET)).toBe(base));

  it('refuses another bucket and paths that leave the bucket', () => {
    expect(() => deltaBase(`s3://other/${PREFIX}`, BUCKET)).toThrow(/names bucket other, not vectors/);
    expect(() => deltaBase('lines/delta/../../etc', BUCKET)).toThrow(/no empty, "\." or "\.\." segments/);
    expect(() => deltaBase('', BUCKET)).toThrow(PipelineError);
  });
});

describe('fetching a Chroma-directory delta', () => {
  it("the tarball layout (Python's arcname='.' members), with the prefix recorded either way", async () => {
    const store = await withArchive([
      ['.', 'dir'],
      ['./chroma.sqlite3', 'file', 'db'],
      ['./seg', 'dir'],
      ['./seg/data_level0.bin', 'file', 'vectors'],
    ]);
    for (const recorded of [PREFIX, `${PREFIX}/`]) {
      const dest = fresh();
      expect(await fetchChromaDelta(store, BUCKET, recorded, dest, LIMITS)).toMatchObject({
        layout: 'tar.gz',
      });
      expect(readdirSync(dest).sort()).toEqual(['chroma.sqlite3', 'seg']);
      expect(readFileSync(join(dest, 'seg', 'data_level0.bin'), 'utf8')).toBe('vectors');
      expect(existsSync(`${dest}.tar.gz`)).toBe(false); // the archive is not kept
    }
  });

  it('the per-file layout: every object under the (deeper) prefix, in its place', async () => {
    const store = dirStore();
    const deep = `${PREFIX}/0123456789abcdef0123456789abcdef`;
    await store.put(BUCKET, `${deep}/chroma.sqlite3`, 'db');
    await store.put(BUCKET, `${deep}/seg/header.bin`, 'h');
    await store.put(BUCKET, `${PREFIX}-sibling/x`, 'not ours');
    const dest = fresh();
    expect(await fetchChromaDelta(store, BUCKET, `${deep}/`, dest, LIMITS)).toEqual({
      layout: 'files',
      bytes: 3,
    });
    expect(readFileSync(join(dest, 'seg', 'header.bin'), 'utf8')).toBe('h');
    expect(readdirSync(dest).sort()).toEqual(['chroma.sqlite3', 'seg']);
  });

  it('no delta under the prefix is SourceMissing', async () => {
    const err = await fetchChromaDelta(dirStore(), BUCKET, PREFIX, fresh(), LIMITS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceMissingError);
  });

  it.each<[string, TarEntry[], RegExp]>([
    [
      'a member escaping the directory',
      [['../../escape', 'file', 'x']],
      /"\.\.\/\.\.\/escape" leaves the extraction directory/,
    ],
    [
      'an absolute member',
      [['/tmp/abs-escape', 'file', 'x']],
      /"\/tmp\/abs-escape" leaves the extraction directory/,
    ],
    ['a symlink', [['chroma.sqlite3', 'symlink', '/etc/passwd']], /"chroma.sqlite3" is a SymbolicLink/],
    [
      'a hardlink',
      [
        ['f', 'file', 'x'],
        ['h', 'hardlink', '/etc/passwd'],
      ],
      /"h" is a Link/,
    ],
    ['a character device', [['c', 'chr']], /"c" is a CharacterDevice/],
    ['a FIFO', [['p', 'fifo']], /"p" is a FIFO/],
  ])('refuses %s, writing nothing', async (_what, entries, problem) => {
    const store = await withArchive(entries);
    const dest = fresh();
    expect(await refusal(fetchChromaDelta(store, BUCKET, PREFIX, dest, LIMITS))).toMatch(problem);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(join(dest, '..'))).toEqual([]);
  });

  it('refuses truncated and non-tar archives with a reason', async () => {
    const whole = readFileSync(pythonTarGz([['chroma.sqlite3', 'file', 'x'.repeat(100_000)]]));
    for (const [bytes, problem] of [
      [whole.subarray(0, whole.length >> 1), /not a readable tar\.gz \(.*unexpected end of file/],
      [Buffer.from('definitely not gzip'), /not a readable tar\.gz/],
    ] as const) {
      const dest = fresh();
      expect(await refusal(fetchChromaDelta(await withArchive(bytes), BUCKET, PREFIX, dest, LIMITS))).toMatch(
        problem,
      );
      expect(existsSync(dest)).toBe(false);
    }
  });

  it('refuses an archive over the size limit before downloading it, and one unpacking beyond the limits', async () => {
    const store = await withArchive([['big', 'file', 'y'.repeat(5000)]]);
    const dest = fresh();
    expect(
      await refusal(fetchChromaDelta(store, BUCKET, PREFIX, dest, { ...LIMITS, maxArchiveBytes: 100 })),
    ).toMatch(/delta archive s3:\/\/vectors\/.*delta\.tar\.gz is \d+ bytes, over the 100-byte limit/);
    expect(
      await refusal(fetchChromaDelta(store, BUCKET, PREFIX, dest, { ...LIMITS, maxBytes: 4096 })),
    ).toMatch(/more than 4096 bytes unpacked/);
    const many = await withArchive(Array.from({ length: 6 }, (_, i): TarEntry => [`f${i}`, 'file', 'x']));
    expect(await refusal(fetchChromaDelta(many, BUCKET, PREFIX, dest, { ...LIMITS, maxEntries: 5 }))).toMatch(
      /more than 5 entries/,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it('per-file layout: a key escaping the prefix, too many files or too many bytes are refused, writing nothing', async () => {
    const deep = `${PREFIX}/abc`;
    const escaping = memoryStore({ [`${deep}/chroma.sqlite3`]: 'db', [`${deep}/../../../x`]: 'evil' });
    const dest = fresh();
    expect(await refusal(fetchChromaDelta(escaping, BUCKET, deep, dest, LIMITS))).toMatch(
      /"\.\.\/\.\.\/\.\.\/x" leaves the delta directory/,
    );
    const files = memoryStore({ [`${deep}/a`]: 'xx', [`${deep}/b`]: 'yy', [`${deep}/c`]: 'zz' });
    expect(await refusal(fetchChromaDelta(files, BUCKET, deep, dest, { ...LIMITS, maxEntries: 2 }))).toMatch(
      /has 3 files, more than 2/,
    );
    expect(await refusal(fetchChromaDelta(files, BUCKET, deep, dest, { ...LIMITS, maxBytes: 5 }))).toMatch(
      /holds 6 bytes, more than 5/,
    );
    expect(existsSync(dest)).toBe(false);
  });
});

import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import { ensureLiveIntact } from '../../../../core/snapshot/repair.js';
import {
  listArchivedVersions,
  pointerKey,
  readPointer,
  restoreSnapshot,
} from '../../../../core/snapshot/s3-snapshot.js';
import { InvalidVersionIdError, isVersionId } from '../../../../core/snapshot/version-id.js';
import {
  copyCurrentTo,
  installVersion,
  listVersions,
  readCurrent,
  switchCurrent,
} from '../../../../core/snapshot/volume.js';

function chromaDir(content: string): string {
  const d = mkdtempSync(join(tmpdir(), 'src-'));
  writeFileSync(join(d, 'chroma.sqlite3'), content);
  return d;
}

async function rejection(p: Promise<unknown>): Promise<InvalidVersionIdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidVersionIdError);
  return err as InvalidVersionIdError;
}

describe('snapshot version ids (issue 18 item 6)', () => {
  it.each(['20260101T000000000Z-abc123', 'v1', 'a.b_c-d', 'A'.repeat(128)])('accepts %s', (v) => {
    expect(isVersionId(v)).toBe(true);
  });
  it.each(['x/../../../words', '..', '.hidden', '-v', 'a/b', 'a\\b', '', 'A'.repeat(129), 'v 1', 'v\n1'])(
    'refuses %j',
    (v) => {
      expect(isVersionId(v)).toBe(false);
    },
  );

  it('a CURRENT naming x/../../../words is a typed error naming the file, and replaces nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    await installVersion(root, 'words', 'v-words', chromaDir('words data'));
    await switchCurrent(root, 'words', 'v-words', { expected: undefined });
    mkdirSync(join(root, 'lines'), { recursive: true });
    writeFileSync(join(root, 'lines', 'CURRENT'), 'x/../../../words\n');

    const err = await rejection(readCurrent(root, 'lines'));
    expect(err.reason).toBe('SnapshotDamaged');
    expect(err.source).toBe(join(root, 'lines', 'CURRENT'));
    expect(err.message).toContain(join(root, 'lines', 'CURRENT'));
    await rejection(copyCurrentTo(root, 'lines', mkdtempSync(join(tmpdir(), 'scratch-'))));
    // The audit's reproduction: installing under that id removed and replaced the whole words collection.
    await rejection(installVersion(root, 'lines', 'x/../../../words', chromaDir('attacker')));
    await rejection(switchCurrent(root, 'lines', '../../words/versions/v-words', { expected: undefined }));
    expect(readFileSync(join(root, 'words', 'CURRENT'), 'utf8').trim()).toBe('v-words');
    expect(readFileSync(join(root, 'words', 'versions', 'v-words', 'chroma.sqlite3'), 'utf8')).toBe(
      'words data',
    );
    expect(readFileSync(join(root, 'lines', 'CURRENT'), 'utf8')).toBe('x/../../../words\n');
  });

  it('a directory on the volume whose name is no version id is not listed as a version', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    await installVersion(root, 'lines', 'v1', chromaDir('a'));
    mkdirSync(join(root, 'lines', 'versions', 'bad name'));
    expect(await listVersions(root, 'lines')).toEqual(['v1']);
  });

  it('an S3 pointer naming a path is a typed error naming the s3:// pointer; restore and listing refuse it too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    const store = new DirectoryObjectStore(dir);
    mkdirSync(join(dir, 'vectors'), { recursive: true });
    await store.put('vectors', pointerKey('lines'), 'x/../../../words');
    const err = await rejection(readPointer(store, 'vectors', 'lines'));
    expect(err.source).toBe('s3://vectors/lines/snapshot/latest-pointer.txt');
    const dest = join(dir, 'restored');
    await rejection(restoreSnapshot(store, 'vectors', 'lines', dest));
    await rejection(restoreSnapshot(store, 'vectors', 'lines', dest, '../words'));
    expect(existsSync(dest)).toBe(false);
    await store.put('vectors', 'lines/snapshot/timestamped/..%2F../snapshot.tar.gz', 'x');
    await store.put('vectors', 'lines/snapshot/timestamped/v-ok/snapshot.tar.gz', 'x');
    expect(await listArchivedVersions(store, 'vectors', 'lines')).toEqual(['v-ok']);
  });

  it('repair treats a CURRENT naming no valid id like a missing one: the newest intact version goes live', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    await installVersion(root, 'words', 'v-words', chromaDir('words data'));
    await switchCurrent(root, 'words', 'v-words', { expected: undefined });
    await installVersion(root, 'lines', 'v1', chromaDir('lines v1'));
    writeFileSync(join(root, 'lines', 'CURRENT'), 'x/../../../words\n');
    const state = await ensureLiveIntact({
      root,
      collection: 'lines',
      workDir: mkdtempSync(join(tmpdir(), 'w-')),
    });
    expect(state).toMatchObject({
      kind: 'repaired',
      version: 'v1',
      from: 'volume',
      was: { problem: expect.stringContaining('is not a valid version id') },
    });
    expect(await readCurrent(root, 'lines')).toBe('v1');
    expect(readFileSync(join(root, 'words', 'CURRENT'), 'utf8').trim()).toBe('v-words');
    expect(readFileSync(join(root, 'words', 'versions', 'v-words', 'chroma.sqlite3'), 'utf8')).toBe(
      'words data',
    );
  });
});

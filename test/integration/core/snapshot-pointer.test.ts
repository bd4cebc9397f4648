// The S3 snapshot pointer never moves backwards (issue 17 item 2c), against moto's S3: an older version's upload
// after a newer pointer leaves the pointer on the newer one, also when the newer pointer lands between the older
// upload's read and its write (the conditional PutObject, If-Match on the ETag read, loses with 412 and re-reads).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import { LeaseLostError } from '../../../core/lease/lease.js';
import { archiveKey, pointerKey, readPointer, uploadSnapshot } from '../../../core/snapshot/s3-snapshot.js';
import { newVersionId } from '../../../core/snapshot/volume.js';
import '../../harness/env.js';
import { awsSettings, createBucket } from '../../support/aws.js';

const env = inject('testEnv');
let store: S3Store;

beforeAll(() => {
  store = new S3Store(awsSettings(env));
});

function chromaDir(content: string): string {
  const d = mkdtempSync(join(tmpdir(), 'src-'));
  mkdirSync(join(d, 'seg'));
  writeFileSync(join(d, 'chroma.sqlite3'), content);
  return d;
}

const older = newVersionId(new Date('2026-01-01T00:00:00Z'));
const newer = newVersionId(new Date('2026-01-01T00:00:05Z'));

describe('uploadSnapshot moves the S3 pointer forward only', () => {
  it('an older version uploaded after a newer pointer leaves the pointer on the newer one', async () => {
    const bucket = await createBucket(store, 'pointer');
    expect(await uploadSnapshot(store, bucket, 'lines', newer, chromaDir('new'))).toMatchObject({
      pointer: newer,
      moved: true,
    });
    const late = await uploadSnapshot(store, bucket, 'lines', older, chromaDir('old'));
    expect(late).toMatchObject({ pointer: newer, moved: false });
    expect(await readPointer(store, bucket, 'lines')).toBe(newer);
    // The archive itself is uploaded (a restore may name it); only the pointer is not moved back.
    expect(await store.head(bucket, archiveKey('lines', older))).toBeDefined();
    // The same version again and a newer one behave as before.
    expect(await uploadSnapshot(store, bucket, 'lines', newer, chromaDir('new'))).toMatchObject({
      pointer: newer,
      moved: false,
    });
    const newest = newVersionId(new Date('2026-01-01T00:00:09Z'));
    expect(await uploadSnapshot(store, bucket, 'lines', newest, chromaDir('newest'))).toMatchObject({
      pointer: newest,
      moved: true,
    });
  });

  it('a newer pointer written between the older upload’s read and its write wins (conditional put, 412, re-read)', async () => {
    const bucket = await createBucket(store, 'pointer-race');
    const oldest = newVersionId(new Date('2025-12-31T00:00:00Z'));
    await uploadSnapshot(store, bucket, 'words', oldest, chromaDir('oldest'));
    let raced = false;
    // The deposed holder read the pointer (oldest < older), then paused; its successor published `newer` meanwhile.
    const late = await uploadSnapshot(store, bucket, 'words', older, chromaDir('old'), {
      assertHeld: async () => {
        if (raced) return;
        raced = true;
        await store.put(bucket, pointerKey('words'), newer, { contentType: 'text/plain' });
      },
    });
    expect(raced).toBe(true);
    expect(late).toMatchObject({ pointer: newer, moved: false });
    expect(await readPointer(store, bucket, 'words')).toBe(newer);
  });

  it('the assertHeld callback runs right before the pointer write: a lost lease leaves the pointer alone', async () => {
    const bucket = await createBucket(store, 'pointer-lease');
    await uploadSnapshot(store, bucket, 'lines', older, chromaDir('old'));
    const lost = uploadSnapshot(store, bucket, 'lines', newer, chromaDir('new'), {
      assertHeld: async () => {
        throw new LeaseLostError('lease moved on');
      },
    });
    await expect(lost).rejects.toThrow(LeaseLostError);
    expect(await readPointer(store, bucket, 'lines')).toBe(older);
    expect(await store.head(bucket, archiveKey('lines', newer))).toBeDefined();
  });

  it('a pointer naming no valid version id is replaced', async () => {
    const bucket = await createBucket(store, 'pointer-bad');
    await store.put(bucket, pointerKey('lines'), '~~~not a version~~~');
    expect(await uploadSnapshot(store, bucket, 'lines', older, chromaDir('old'))).toMatchObject({
      pointer: older,
      moved: true,
    });
    expect(await readPointer(store, bucket, 'lines')).toBe(older);
  });
});

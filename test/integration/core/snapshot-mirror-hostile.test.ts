import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import {
  archiveKey,
  pointerKey,
  readPointer,
  restoreSnapshot,
  snapshotPrefix,
} from '../../../core/snapshot/s3-snapshot.js';
import { UnsafeArchiveError } from '../../../core/snapshot/safe-extract.js';
import { InvalidVersionIdError } from '../../../core/snapshot/version-id.js';
import '../../harness/env.js';
import { awsSettings, createBucket } from '../../support/aws.js';

const env = inject('testEnv');
let store: S3Store;
let bucket: string;

beforeAll(async () => {
  store = new S3Store(awsSettings(env));
  bucket = await createBucket(store, 'mirror');
});

/** A .tar.gz with `d/x -> ..` and `a -> d/x/../outside` (the chain node-tar's strict mode let through). */
function symlinkChain(): Buffer {
  const out = join(mkdtempSync(join(tmpdir(), 'tar-')), 'a.tar.gz');
  const py = `
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w:gz') as t:
    f = tarfile.TarInfo('chroma.sqlite3'); f.size = 2; t.addfile(f, io.BytesIO(b'db'))
    d = tarfile.TarInfo('d'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
    x = tarfile.TarInfo('d/x'); x.type = tarfile.SYMTYPE; x.linkname = '..'; t.addfile(x)
    a = tarfile.TarInfo('a'); a.type = tarfile.SYMTYPE; a.linkname = 'd/x/../outside/target.txt'; t.addfile(a)
`;
  execFileSync('python3', ['-c', py, out]);
  return readFileSync(out);
}

/** Issue 18 items 6 and 7 against moto's S3: what a writer of the vectors bucket could plant. */
describe('S3 snapshot mirror with hostile content', () => {
  it('a latest-pointer naming a path is InvalidVersionIdError naming the s3:// pointer; nothing is restored', async () => {
    await store.put(bucket, pointerKey('words'), 'x/../../../lines');
    const err = await readPointer(store, bucket, 'words').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidVersionIdError);
    expect((err as Error).message).toContain(
      `s3://${bucket}/words/snapshot/latest-pointer.txt names version`,
    );
    const dest = join(mkdtempSync(join(tmpdir(), 'dest-')), 'out');
    await expect(restoreSnapshot(store, bucket, 'words', dest)).rejects.toThrow(InvalidVersionIdError);
    expect(existsSync(dest)).toBe(false);
  });

  it('an archive without its .sha256 is not extracted; a symlink chain with a matching .sha256 is refused', async () => {
    const bytes = symlinkChain();
    await store.put(bucket, archiveKey('lines', 'v1'), bytes);
    const dest = join(mkdtempSync(join(tmpdir(), 'dest-')), 'out');
    await expect(restoreSnapshot(store, bucket, 'lines', dest, 'v1')).rejects.toThrow(
      /has no snapshot\.tar\.gz\.sha256/,
    );
    expect(existsSync(dest)).toBe(false);
    const sha = createHash('sha256').update(bytes).digest('hex');
    await store.put(bucket, `${snapshotPrefix('lines', 'v1')}snapshot.tar.gz.sha256`, `${sha}\n`);
    const err = await restoreSnapshot(store, bucket, 'lines', dest, 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as Error).message).toMatch(/"d\/x" is a SymbolicLink/);
    expect(existsSync(dest)).toBe(false);
  });
});

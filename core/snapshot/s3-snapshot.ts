import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create as tarCreate, extract as tarExtract } from 'tar';
import type { Collection } from '../contracts/ids.js';
import { PipelineError } from '../errors.js';
import type { ObjectStore } from '../ports/object-store.js';
import { fileSha256 } from './file-digests.js';

/**
 * S3 mirror of published versions (DESIGN §4.7), in the original system's layout so its snapshots can be imported:
 *   {collection}/snapshot/timestamped/{version}/snapshot.tar.gz (+ .sha256)
 *   {collection}/snapshot/latest-pointer.txt   body = version id, written last
 */
export const pointerKey = (c: Collection) => `${c}/snapshot/latest-pointer.txt`;
export const snapshotPrefix = (c: Collection, version: string) => `${c}/snapshot/timestamped/${version}/`;
export const archiveKey = (c: Collection, version: string) => `${snapshotPrefix(c, version)}snapshot.tar.gz`;

export async function readPointer(
  store: ObjectStore,
  bucket: string,
  c: Collection,
): Promise<string | undefined> {
  if (!(await store.head(bucket, pointerKey(c)))) return undefined;
  const v = (await store.getBuffer(bucket, pointerKey(c))).toString('utf8').trim();
  return v || undefined;
}

/** Tars a stopped Chroma directory, uploads archive + hash, then moves the pointer. */
export async function uploadSnapshot(
  store: ObjectStore,
  bucket: string,
  c: Collection,
  version: string,
  dir: string,
): Promise<{ sha256: string; bytes: number }> {
  const work = await mkdtemp(join(tmpdir(), 'snapshot-up-'));
  try {
    const archive = join(work, 'snapshot.tar.gz');
    await tarCreate({ gzip: { level: 1 }, file: archive, cwd: dir, portable: true }, ['.']);
    const sha256 = await fileSha256(archive);
    const { size } = await stat(archive);
    await store.put(bucket, archiveKey(c, version), createReadStream(archive), {
      contentType: 'application/gzip',
      metadata: { version, collection: c, sha256 },
    });
    await store.put(bucket, `${snapshotPrefix(c, version)}snapshot.tar.gz.sha256`, `${sha256}\n`);
    await store.put(bucket, pointerKey(c), version, { contentType: 'text/plain' });
    return { sha256, bytes: size };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Downloads and extracts the pointed-to version into `dest`. Returns undefined when there is no pointer (an empty
 * collection: only the compactor may publish one). Verifies the SHA-256 when recorded; refuses paths escaping dest.
 */
export async function restoreSnapshot(
  store: ObjectStore,
  bucket: string,
  c: Collection,
  dest: string,
  version?: string,
): Promise<{ version: string } | undefined> {
  const v = version ?? (await readPointer(store, bucket, c));
  if (!v) return undefined;
  const work = await mkdtemp(join(tmpdir(), 'snapshot-down-'));
  try {
    const archive = join(work, 'snapshot.tar.gz');
    await pipeline(await store.getStream(bucket, archiveKey(c, v)), createWriteStream(archive));
    const hashKey = `${snapshotPrefix(c, v)}snapshot.tar.gz.sha256`;
    if (await store.head(bucket, hashKey)) {
      const expected = (await store.getBuffer(bucket, hashKey)).toString('utf8').trim();
      const actual = await fileSha256(archive);
      if (expected !== actual) {
        throw new PipelineError(
          'DeltaCorrupt',
          `snapshot ${c}/${v} sha256 mismatch: expected ${expected}, got ${actual}`,
        );
      }
    }
    await mkdir(dest, { recursive: true });
    await tarExtract({ file: archive, cwd: dest, strict: true, preservePaths: false });
    return { version: v };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Versions with an archive in the mirror, oldest first (ids sort by time). */
export async function listArchivedVersions(
  store: ObjectStore,
  bucket: string,
  c: Collection,
): Promise<string[]> {
  const prefix = `${c}/snapshot/timestamped/`;
  const versions = new Set<string>();
  for (const o of await store.list(bucket, prefix)) {
    const [version, name] = o.key.slice(prefix.length).split('/');
    if (version && name === 'snapshot.tar.gz') versions.add(version);
  }
  return [...versions].sort();
}

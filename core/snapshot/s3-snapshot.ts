import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { create as tarCreate } from 'tar';
import type { Collection } from '../contracts/ids.js';
import { S3ConditionalWrites } from '../aws/s3-conditional.js';
import { S3Store } from '../aws/s3-store.js';
import { PipelineError, SourceMissingError, TransientError } from '../errors.js';
import type { ObjectStore } from '../ports/object-store.js';
import { fileSha256 } from './file-digests.js';
import { DEFAULT_EXTRACT_LIMITS, extractArchive, type ExtractLimits } from './safe-extract.js';
import { checkVersionId, isVersionId } from './version-id.js';

/**
 * S3 mirror of published versions (docs/adr/0009-wire-contracts.md), in the original system's layout so its snapshots
 * can be imported:
 *   {collection}/snapshot/timestamped/{version}/snapshot.tar.gz (+ .sha256)
 *   {collection}/snapshot/latest-pointer.txt   body = version id, written last, never moved to an older version
 */
export const pointerKey = (c: Collection) => `${c}/snapshot/latest-pointer.txt`;
export const snapshotPrefix = (c: Collection, version: string) => `${c}/snapshot/timestamped/${version}/`;
export const archiveKey = (c: Collection, version: string) => `${snapshotPrefix(c, version)}snapshot.tar.gz`;

/** A pointer holds one version id (≤ 128 bytes); anything much larger is not read. */
const POINTER_MAX_BYTES = 1024;

/** The pointed-to version, undefined without a pointer; InvalidVersionIdError when it names no plain id. */
export async function readPointer(
  store: ObjectStore,
  bucket: string,
  c: Collection,
): Promise<string | undefined> {
  const source = `s3://${bucket}/${pointerKey(c)}`;
  const head = await store.head(bucket, pointerKey(c));
  if (!head) return undefined;
  if (head.size > POINTER_MAX_BYTES)
    throw new PipelineError('SnapshotDamaged', `${source} is ${head.size} bytes, not a version id`, {
      source,
    });
  const v = (await store.getBuffer(bucket, pointerKey(c))).toString('utf8').trim();
  return v ? checkVersionId(v, source) : undefined;
}

export interface UploadOptions {
  /**
   * Run right before the pointer is written (before every attempt): the uploader's lease check (FencedLease
   * assertHeld). When it throws, the pointer is not written and the error propagates; the archive stays.
   */
  assertHeld?: () => Promise<unknown>;
}

export interface UploadResult {
  sha256: string;
  bytes: number;
  /** The version the pointer names afterwards: `version`, or a newer one that was there already. */
  pointer: string;
  /** The pointer was written by this upload (false: it named `version` or a newer version already). */
  moved: boolean;
}

/**
 * Tars a stopped Chroma directory, uploads archive + hash, then moves the pointer — forward only: a pointer naming a
 * newer version (ids sort by time) is left alone, so a deposed compactor's upload still in flight cannot move a
 * successor's pointer back. See movePointer.
 */
export async function uploadSnapshot(
  store: ObjectStore,
  bucket: string,
  c: Collection,
  version: string,
  dir: string,
  opts: UploadOptions = {},
): Promise<UploadResult> {
  checkVersionId(version, `version to upload to s3://${bucket}/${c}`);
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
    const pointer = await movePointer(store, bucket, c, version, opts);
    return { sha256, bytes: size, ...pointer };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Attempts at a conditional pointer write that lost a race before giving up (TransientError). */
const POINTER_ATTEMPTS = 8;

/**
 * Points `{c}/snapshot/latest-pointer.txt` at `version` unless it names `version` or a newer one already. A pointer
 * that is oversized or names no valid id is damaged and replaced.
 *
 * On S3 (S3Store) this is a compare-and-swap: the pointer is read with its ETag, compared, and written with If-Match
 * (If-None-Match: * when absent); a write that lost a race (412, 409) re-reads and compares again. On another store
 * (the local directory store, which has no conditional write) it is read → compare → write, leaving a window between
 * the read and the write in which a concurrent newer pointer can be overwritten; local mode has a single compactor
 * process under the home's file lease.
 */
export async function movePointer(
  store: ObjectStore,
  bucket: string,
  c: Collection,
  version: string,
  opts: UploadOptions = {},
): Promise<{ pointer: string; moved: boolean }> {
  const key = pointerKey(c);
  const source = `s3://${bucket}/${key}`;
  const newer = (text: string | undefined) =>
    text !== undefined && isVersionId(text) && text >= version ? text : undefined;
  if (!(store instanceof S3Store)) {
    const head = await store.head(bucket, key);
    const text =
      head && head.size <= POINTER_MAX_BYTES
        ? (await store.getBuffer(bucket, key)).toString('utf8').trim()
        : undefined;
    const kept = newer(text);
    if (kept) return { pointer: kept, moved: false };
    await opts.assertHeld?.();
    await store.put(bucket, key, version, { contentType: 'text/plain' });
    return { pointer: version, moved: true };
  }
  const s3 = new S3ConditionalWrites(store.client);
  for (let attempt = 1; attempt <= POINTER_ATTEMPTS; attempt++) {
    const got = await s3.getTagged(bucket, key, POINTER_MAX_BYTES);
    const kept = newer(got?.body?.toString('utf8').trim());
    if (kept) return { pointer: kept, moved: false };
    await opts.assertHeld?.();
    if (await s3.putIf(bucket, key, version, got?.etag, { contentType: 'text/plain' }))
      return { pointer: version, moved: true };
  }
  throw new TransientError(
    `${source}: ${POINTER_ATTEMPTS} conditional writes of ${version} lost to concurrent writers`,
    { source, version },
  );
}

export interface RestoreLimits extends ExtractLimits {
  /** Compressed archive size, checked before downloading (and while downloading). */
  maxArchiveBytes: number;
}

export const DEFAULT_RESTORE_LIMITS: RestoreLimits = {
  ...DEFAULT_EXTRACT_LIMITS,
  maxArchiveBytes: 16 * 1024 ** 3,
};

/**
 * Downloads and extracts the pointed-to version into `dest`. Returns undefined when there is no pointer (an empty
 * collection: only the compactor may publish one). The `.sha256` beside the archive is required and checked before
 * anything is extracted; extraction accepts only files and directories within limits (safe-extract.ts).
 */
export async function restoreSnapshot(
  store: ObjectStore,
  bucket: string,
  c: Collection,
  dest: string,
  version?: string,
  limits: RestoreLimits = DEFAULT_RESTORE_LIMITS,
): Promise<{ version: string } | undefined> {
  const v =
    version === undefined
      ? await readPointer(store, bucket, c)
      : checkVersionId(version, `requested version of ${c}`);
  if (!v) return undefined;
  const key = archiveKey(c, v);
  const name = `s3://${bucket}/${key}`;
  const head = await store.head(bucket, key);
  if (!head) throw new SourceMissingError(bucket, key);
  if (head.size > limits.maxArchiveBytes)
    throw damaged(name, `is ${head.size} bytes, over the ${limits.maxArchiveBytes}-byte limit`);
  const hashKey = `${snapshotPrefix(c, v)}snapshot.tar.gz.sha256`;
  const hashHead = await store.head(bucket, hashKey);
  // The digest is what makes an archive acceptable: without it, nothing is extracted.
  if (!hashHead) throw damaged(name, `has no ${hashKey.split('/').pop()} beside it`);
  if (hashHead.size > 256) throw damaged(name, `its .sha256 is ${hashHead.size} bytes, not a digest`);
  const expected = (await store.getBuffer(bucket, hashKey)).toString('utf8').trim().split(/\s+/)[0] ?? '';
  if (!/^[0-9a-f]{64}$/.test(expected)) throw damaged(name, 'its .sha256 holds no SHA-256 digest');
  const work = await mkdtemp(join(tmpdir(), 'snapshot-down-'));
  try {
    const archive = join(work, 'snapshot.tar.gz');
    await pipeline(
      await store.getStream(bucket, key),
      byteLimit(limits.maxArchiveBytes, () => damaged(name, `exceeds ${limits.maxArchiveBytes} bytes`)),
      createWriteStream(archive),
    );
    const actual = await fileSha256(archive);
    if (expected !== actual) {
      throw new PipelineError(
        'DeltaCorrupt',
        `snapshot ${c}/${v} sha256 mismatch: expected ${expected}, got ${actual}`,
      );
    }
    await extractArchive(archive, dest, name, limits);
    return { version: v };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function damaged(name: string, problem: string): PipelineError {
  return new PipelineError('SnapshotDamaged', `snapshot archive ${name} ${problem}`, { archive: name });
}

/** Passes bytes through until more than `max` have passed, then fails the pipeline. */
function byteLimit(max: number, error: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(error());
      else cb(null, chunk);
    },
  });
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
    // A key whose version segment is no version id is not a version we would ever restore.
    if (version && name === 'snapshot.tar.gz' && isVersionId(version)) versions.add(version);
  }
  return [...versions].sort();
}

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
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
import { readManifest, VERSION_INFO } from './volume.js';
import { SEALED_DIR } from '../segments/manifest.js';

/**
 * S3 mirror of published versions (docs/adr/0009-wire-contracts.md), in the original system's layout so its snapshots
 * can be imported:
 *   {collection}/snapshot/timestamped/{version}/snapshot.tar.gz (+ .sha256)
 *   {collection}/snapshot/latest-pointer.txt   body = version id, written last, never moved to an older version
 */
export const pointerKey = (c: Collection) => `${c}/snapshot/latest-pointer.txt`;
export const snapshotPrefix = (c: Collection, version: string) => `${c}/snapshot/timestamped/${version}/`;
export const archiveKey = (c: Collection, version: string) => `${snapshotPrefix(c, version)}snapshot.tar.gz`;
/**
 * A sealed segment's archive (docs/adr/0012-immutable-segments.md): content-addressed, uploaded once and shared by
 * every snapshot whose manifest lists it; a version's own archive holds its hot segment and manifest only.
 */
export const segmentsPrefix = (c: Collection) => `${c}/snapshot/segments/`;
export const segmentKey = (c: Collection, id: string) => `${segmentsPrefix(c)}${id}.tar.gz`;
/** The version's manifest beside its archive: which segments a kept snapshot needs (the mirror's trim reads it). */
export const manifestKey = (c: Collection, version: string) => `${snapshotPrefix(c, version)}${VERSION_INFO}`;

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
  /** Bytes uploaded: the version's archive and the sealed segments not in the mirror yet. */
  bytes: number;
  /** Sealed segments uploaded by this snapshot (the others were there already). */
  segmentsUploaded: number;
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
    const manifest = await readManifest(dir);
    let bytes = 0;
    let segmentsUploaded = 0;
    for (const seg of manifest.segments) {
      if (await store.head(bucket, segmentKey(c, seg.id))) continue; // content-addressed: already there
      const put = await putArchive(
        store,
        bucket,
        segmentKey(c, seg.id),
        join(dir, SEALED_DIR, seg.id),
        work,
        {
          segment: seg.id,
          collection: c,
        },
      );
      bytes += put.size;
      segmentsUploaded++;
    }
    // The version's own archive: the hot segment and the manifest, without the sealed segments.
    const { size, sha256 } = await putArchive(store, bucket, archiveKey(c, version), dir, work, {
      version,
      collection: c,
    });
    if (manifest.segments.length)
      await store.put(bucket, manifestKey(c, version), await readFile(join(dir, VERSION_INFO)));
    const pointer = await movePointer(store, bucket, c, version, opts);
    return { sha256, bytes: bytes + size, segmentsUploaded, ...pointer };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Tars `dir` (leaving out its `sealed/` directory), uploads it to `key` with its SHA-256 (in the metadata and in
 * `{key}.sha256`, which restores require). Returns the archive's size and SHA-256.
 */
async function putArchive(
  store: ObjectStore,
  bucket: string,
  key: string,
  dir: string,
  work: string,
  metadata: Record<string, string>,
): Promise<{ size: number; sha256: string }> {
  const archive = join(work, 'upload.tar.gz');
  await tarCreate(
    {
      gzip: { level: 1 },
      file: archive,
      cwd: dir,
      portable: true,
      filter: (path) => !/^(\.\/)?sealed(\/|$)/.test(path),
    },
    ['.'],
  );
  const sha256 = await fileSha256(archive);
  const { size } = await stat(archive);
  await store.put(bucket, key, createReadStream(archive), {
    contentType: 'application/gzip',
    metadata: { ...metadata, sha256 },
  });
  await store.put(bucket, `${key}.sha256`, `${sha256}\n`);
  await rm(archive, { force: true });
  return { size, sha256 };
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
  await fetchArchive(store, bucket, archiveKey(c, v), dest, limits, `snapshot ${c}/${v}`);
  // The version's manifest names its sealed segments: each is fetched from its shared, content-addressed archive.
  // Their files are checked against the manifest's digests by whoever installs or copies the version.
  for (const seg of (await readManifest(dest)).segments)
    await fetchArchive(
      store,
      bucket,
      segmentKey(c, seg.id),
      join(dest, SEALED_DIR, seg.id),
      limits,
      `segment ${c}/${seg.id}`,
    );
  return { version: v };
}

/**
 * Downloads `key`, checks it against the `{key}.sha256` beside it (required) and the size limits, and extracts it
 * into `dest` (files and directories only, safe-extract.ts).
 */
async function fetchArchive(
  store: ObjectStore,
  bucket: string,
  key: string,
  dest: string,
  limits: RestoreLimits,
  label: string,
): Promise<void> {
  const name = `s3://${bucket}/${key}`;
  const head = await store.head(bucket, key);
  if (!head) throw new SourceMissingError(bucket, key);
  if (head.size > limits.maxArchiveBytes)
    throw damaged(name, `is ${head.size} bytes, over the ${limits.maxArchiveBytes}-byte limit`);
  const hashKey = `${key}.sha256`;
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
        `${label} sha256 mismatch: expected ${expected}, got ${actual}`,
      );
    }
    await extractArchive(archive, dest, name, limits);
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

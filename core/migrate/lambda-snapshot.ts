import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Collection } from '../contracts/ids.js';
import { PipelineError, UsageError } from '../errors.js';
import type { ObjectStore } from '../ports/object-store.js';
import { entryProblem, extractArchive, type ExtractLimits } from '../snapshot/safe-extract.js';
import { checkVersionId } from '../snapshot/version-id.js';

/**
 * The original Lambda system's snapshots in S3 (seed-system.md §7.1, §7.3): `{p}{c}/snapshot/latest-pointer.txt`
 * names a version; the version is `{p}{c}/snapshot/timestamped/{v}/snapshot.tar.gz` with `.snapshot_hash`
 * (`md5:<hex>` of the tarball), or (legacy) the Chroma directory's files uncompressed under that prefix.
 */
export interface LambdaSource {
  store: ObjectStore;
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
}

export interface SourceSnapshot {
  collection: Collection;
  version: string;
  layout: 'tar' | 'legacy';
  /** The version's key prefix, `{p}{c}/snapshot/timestamped/{v}/`. */
  base: string;
  /** Object keys: the tarball (tar) or every file (legacy). */
  keys: string[];
  bytes: number;
  /** `md5:<hex>` as recorded beside the tarball (tar layout only). */
  hash?: string;
}

/** `s3://bucket`, `s3://bucket/prefix` and `s3://bucket/prefix/` (the same prefix). UsageError otherwise. */
export function parseSourceUri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri.trim());
  if (!m) throw new UsageError(`--from must be s3://<bucket>[/<prefix>], not ${JSON.stringify(uri)}`);
  const path = (m[2] ?? '').replace(/\/+$/, '');
  if (path.split('/').some((s) => s === '..' || s === '.'))
    throw new UsageError(`--from prefix ${JSON.stringify(m[2])} has a . or .. segment`);
  return { bucket: m[1]!, prefix: path ? `${path}/` : '' };
}

export const sourceUri = (s: Pick<LambdaSource, 'bucket' | 'prefix'>) => `s3://${s.bucket}/${s.prefix}`;

const POINTER_MAX_BYTES = 1024;
const HASH_MAX_BYTES = 256;

export class SourceSnapshotError extends PipelineError {
  constructor(where: string, problem: string) {
    super('SnapshotDamaged', `${where}: ${problem}`, { source: where, problem });
  }
}

/** The pointed-to snapshot of `c`, undefined when the source has no pointer for it. */
export async function findSourceSnapshot(
  src: LambdaSource,
  c: Collection,
): Promise<SourceSnapshot | undefined> {
  const { store, bucket, prefix } = src;
  const pointerKey = `${prefix}${c}/snapshot/latest-pointer.txt`;
  const head = await store.head(bucket, pointerKey);
  if (!head) return undefined;
  const where = `s3://${bucket}/${pointerKey}`;
  if (head.size > POINTER_MAX_BYTES)
    throw new SourceSnapshotError(where, `is ${head.size} bytes, not a version id`);
  const version = checkVersionId((await store.getBuffer(bucket, pointerKey)).toString('utf8').trim(), where);
  const base = `${prefix}${c}/snapshot/timestamped/${version}/`;
  const tar = await store.head(bucket, `${base}snapshot.tar.gz`);
  if (tar) {
    const hashKey = `${base}.snapshot_hash`;
    const hashHead = await store.head(bucket, hashKey);
    const hw = `s3://${bucket}/${hashKey}`;
    if (!hashHead)
      throw new SourceSnapshotError(
        `s3://${bucket}/${base}snapshot.tar.gz`,
        'has no .snapshot_hash beside it',
      );
    if (hashHead.size > HASH_MAX_BYTES)
      throw new SourceSnapshotError(hw, `is ${hashHead.size} bytes, not a hash`);
    const hash = (await store.getBuffer(bucket, hashKey)).toString('utf8').trim();
    if (!/^md5:[0-9a-f]{32}$/.test(hash))
      throw new SourceSnapshotError(hw, `holds ${JSON.stringify(hash.slice(0, 80))}, not md5:<hex>`);
    return {
      collection: c,
      version,
      layout: 'tar',
      base,
      keys: [`${base}snapshot.tar.gz`],
      bytes: tar.size,
      hash,
    };
  }
  const files = (await store.list(bucket, base)).filter((o) => !o.key.endsWith('/.snapshot_hash'));
  if (!files.some((o) => o.key === `${base}chroma.sqlite3`))
    throw new SourceSnapshotError(
      `s3://${bucket}/${base}`,
      `the pointer names version ${version}, which has neither snapshot.tar.gz nor chroma.sqlite3`,
    );
  return {
    collection: c,
    version,
    layout: 'legacy',
    base,
    keys: files.map((o) => o.key).sort(),
    bytes: files.reduce((n, o) => n + o.size, 0),
  };
}

/**
 * Downloads the snapshot into `dest` (a Chroma directory afterwards). Tar: the download is capped at the archive
 * limit, its MD5 compared with `.snapshot_hash` before anything is extracted, and extraction accepts only files and
 * directories within limits (core/snapshot/safe-extract.ts). Legacy: each key's path below the version must be a
 * plain relative path, and the total is capped the same way.
 */
export async function fetchSourceSnapshot(
  src: LambdaSource,
  snap: SourceSnapshot,
  dest: string,
  work: string,
  limits: ExtractLimits & { maxArchiveBytes: number },
): Promise<void> {
  const { store, bucket } = src;
  if (snap.layout === 'tar') {
    const key = snap.keys[0]!;
    const name = `s3://${bucket}/${key}`;
    if (snap.bytes > limits.maxArchiveBytes)
      throw new SourceSnapshotError(
        name,
        `is ${snap.bytes} bytes, over the ${limits.maxArchiveBytes}-byte limit`,
      );
    const archive = join(work, 'source.tar.gz');
    const md5 = createHash('md5');
    let seen = 0;
    await pipeline(
      await store.getStream(bucket, key),
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          if (seen > limits.maxArchiveBytes)
            return cb(new SourceSnapshotError(name, `exceeds ${limits.maxArchiveBytes} bytes`));
          md5.update(chunk);
          cb(null, chunk);
        },
      }),
      createWriteStream(archive),
    );
    const got = `md5:${md5.digest('hex')}`;
    if (got !== snap.hash)
      throw new PipelineError(
        'DeltaCorrupt',
        `${name}: hash mismatch: .snapshot_hash says ${snap.hash}, the archive is ${got}`,
        {
          archive: name,
        },
      );
    await extractArchive(archive, dest, name, limits);
    return;
  }
  const { base } = snap;
  if (snap.bytes > limits.maxBytes)
    throw new SourceSnapshotError(
      `s3://${bucket}/${base}`,
      `holds ${snap.bytes} bytes, over the ${limits.maxBytes}-byte limit`,
    );
  if (snap.keys.length > limits.maxEntries)
    throw new SourceSnapshotError(`s3://${bucket}/${base}`, `holds more than ${limits.maxEntries} files`);
  for (const key of snap.keys) {
    const rel = key.slice(base.length);
    const problem = entryProblem({ type: 'File', path: rel }) ?? (rel === '' ? 'an empty name' : undefined);
    if (problem) throw new SourceSnapshotError(`s3://${bucket}/${key}`, problem);
    const file = join(dest, ...rel.split('/'));
    await mkdir(dirname(file), { recursive: true });
    await pipeline(await store.getStream(bucket, key), createWriteStream(file));
  }
}

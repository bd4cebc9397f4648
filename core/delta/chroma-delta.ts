import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { objectKeyProblem } from '../contracts/artifact-location.js';
import { ObjectTooLargeError, PipelineError, SourceMissingError } from '../errors.js';
import type { ObjectStore } from '../ports/object-store.js';
import { extractArchive, UnsafeArchiveError, type ExtractLimits } from '../snapshot/safe-extract.js';

/**
 * A delta of the original system (seed-system §7.2): a small Chroma persistent directory holding one receipt's
 * vectors of one collection, recorded in its CompactionRun as a prefix — with or without a trailing slash, or as an
 * `s3://bucket/prefix` URI. Either `{prefix}/delta.tar.gz` (tried first, as the original's compactor did) or, in a
 * later era, the directory's files one by one under `{prefix}/`. Both land in `dest` through the same rules: one
 * extractor for the project (core/snapshot/safe-extract.ts), members that escape the directory, links, devices and
 * anything beyond the limits refused, every refusal a `DeltaCorrupt` naming the object and the problem.
 */
export interface ChromaDeltaLimits extends ExtractLimits {
  /** Largest `delta.tar.gz` downloaded at all. */
  maxArchiveBytes: number;
}

export type ChromaDeltaLayout = 'tar.gz' | 'files';

const corrupt = (why: string) => new PipelineError('DeltaCorrupt', why);

/** The key prefix (no slash at either end) a recorded delta prefix names in `bucket`; refuses another bucket. */
export function deltaBase(prefix: string, bucket: string): string {
  let p = prefix.trim();
  const uri = /^s3:\/\/([^/]*)\/?(.*)$/.exec(p);
  if (uri) {
    if (uri[1] !== bucket)
      throw corrupt(`delta prefix ${JSON.stringify(prefix)} names bucket ${uri[1]}, not ${bucket}`);
    p = uri[2]!;
  }
  p = p.replace(/^\/+/, '').replace(/\/+$/, '');
  const bad = objectKeyProblem(p);
  if (bad) throw corrupt(`delta prefix ${JSON.stringify(prefix)}: ${bad}`);
  return p;
}

/**
 * Downloads the delta a prefix names into `dest` (created; removed again on any failure); the archive is kept beside
 * it (`{dest}.tar.gz`) only while it is checked and extracted. Missing delta: SourceMissingError.
 */
export async function fetchChromaDelta(
  objects: ObjectStore,
  bucket: string,
  prefix: string,
  dest: string,
  limits: ChromaDeltaLimits,
): Promise<{ layout: ChromaDeltaLayout; bytes: number }> {
  const base = deltaBase(prefix, bucket);
  await rm(dest, { recursive: true, force: true });
  try {
    const tarKey = `${base}/delta.tar.gz`;
    const head = await objects.head(bucket, tarKey);
    if (head)
      return {
        layout: 'tar.gz',
        bytes: await fetchArchive(objects, bucket, tarKey, head.size, dest, limits),
      };
    return { layout: 'files', bytes: await fetchFiles(objects, bucket, base, dest, limits) };
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    if (err instanceof UnsafeArchiveError) throw corrupt(err.message);
    if (err instanceof ObjectTooLargeError) throw corrupt(err.message);
    throw err;
  }
}

async function fetchArchive(
  objects: ObjectStore,
  bucket: string,
  key: string,
  size: number,
  dest: string,
  limits: ChromaDeltaLimits,
): Promise<number> {
  const name = `s3://${bucket}/${key}`;
  if (size > limits.maxArchiveBytes)
    throw corrupt(`delta archive ${name} is ${size} bytes, over the ${limits.maxArchiveBytes}-byte limit`);
  const archive = `${dest}.tar.gz`;
  await mkdir(dirname(archive), { recursive: true });
  try {
    await pipeline(
      await objects.getStream(bucket, key, { maxBytes: limits.maxArchiveBytes }),
      createWriteStream(archive),
    );
    await extractArchive(archive, dest, name, limits);
  } finally {
    await rm(archive, { force: true });
  }
  return size;
}

/** The per-file layout: every object under `{base}/`, each key checked as a relative path before it is written. */
async function fetchFiles(
  objects: ObjectStore,
  bucket: string,
  base: string,
  dest: string,
  limits: ChromaDeltaLimits,
): Promise<number> {
  const listed = (await objects.list(bucket, `${base}/`)).filter((o) => !o.key.endsWith('/'));
  if (listed.length === 0) throw new SourceMissingError(bucket, `${base}/delta.tar.gz`);
  const where = `s3://${bucket}/${base}/`;
  if (listed.length > limits.maxEntries)
    throw corrupt(`delta ${where} has ${listed.length} files, more than ${limits.maxEntries}`);
  const total = listed.reduce((n, o) => n + o.size, 0);
  if (total > limits.maxBytes)
    throw corrupt(`delta ${where} holds ${total} bytes, more than ${limits.maxBytes}`);
  const files = listed.map((o) => {
    const rel = o.key.slice(base.length + 1);
    const bad = objectKeyProblem(rel);
    if (bad) throw corrupt(`delta ${where}: ${JSON.stringify(rel)} leaves the delta directory (${bad})`);
    return { key: o.key, rel, size: o.size };
  });
  for (const f of files) {
    const path = join(dest, f.rel);
    await mkdir(dirname(path), { recursive: true });
    // The listed size bounds the body: an object replaced by a larger one since the listing is refused.
    await pipeline(await objects.getStream(bucket, f.key, { maxBytes: f.size }), createWriteStream(path));
  }
  return total;
}

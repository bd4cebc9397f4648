import { z } from 'zod';
import { InputError } from '../errors.js';

/**
 * Where a receipt's NDJSON files may be read from (issue 18 item 3). A message or EmbeddingJob names its bucket and
 * keys; without these checks the worker would read, with its own role, any bucket, access point or Object Lambda ARN
 * the SDK accepts. The patterns are RE2-compatible so the CRD can carry them unchanged (no lookahead).
 */

/** A plain DNS-style S3 bucket name: dot-separated labels of [a-z0-9-], no ARNs, no '/' or ':'. */
export const BUCKET_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$';
export const BUCKET_NAME_MIN = 3;
export const BUCKET_NAME_MAX = 63;

/**
 * An object key whose segments are never empty, `.` or `..`, and that does not start with '/': it stays in its
 * bucket on S3 (path-style too) and in the local directory store. Same rule as `assertKeyInBucket`.
 */
const SEGMENT = '([^/.][^/]*|\\.[^/.][^/]*|\\.\\.[^/]+)';
export const OBJECT_KEY_PATTERN = `^${SEGMENT}(/${SEGMENT})*$`;
/** S3's own limit, in UTF-8 bytes (the CRD can only bound characters, so the byte check is ours). */
export const OBJECT_KEY_MAX_BYTES = 1024;

const bucketRe = new RegExp(BUCKET_NAME_PATTERN);
const keyRe = new RegExp(OBJECT_KEY_PATTERN);

const BUCKET_LENGTH = `bucket name must be ${BUCKET_NAME_MIN}-${BUCKET_NAME_MAX} characters`;
const BUCKET_SHAPE = 'must be a plain DNS-style bucket name (no ARN, access point or path)';
const KEY_BYTES = `object key is longer than ${OBJECT_KEY_MAX_BYTES} bytes`;
const KEY_SHAPE = 'object key must be relative with no empty, "." or ".." segments';

/** Why `bucket` is not a plain bucket name, or undefined. */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < BUCKET_NAME_MIN || bucket.length > BUCKET_NAME_MAX) return BUCKET_LENGTH;
  if (!bucketRe.test(bucket)) return BUCKET_SHAPE;
  return undefined;
}

/** Why `key` would be refused as an artifact key, or undefined. */
export function objectKeyProblem(key: string): string | undefined {
  if (Buffer.byteLength(key, 'utf8') > OBJECT_KEY_MAX_BYTES) return KEY_BYTES;
  if (!keyRe.test(key)) return KEY_SHAPE;
  return undefined;
}

/** zod schemas: pattern and lengths appear in the generated CRD; the byte limit is a refinement (CRDs count characters). */
export const BucketName = z
  .string()
  .min(BUCKET_NAME_MIN, BUCKET_LENGTH)
  .max(BUCKET_NAME_MAX, BUCKET_LENGTH)
  .regex(bucketRe, BUCKET_SHAPE);
export const ObjectKey = z
  .string()
  .min(1, KEY_SHAPE)
  .max(OBJECT_KEY_MAX_BYTES, KEY_BYTES)
  .refine((k) => Buffer.byteLength(k, 'utf8') <= OBJECT_KEY_MAX_BYTES, KEY_BYTES)
  .regex(keyRe, KEY_SHAPE);

/** Parses an allowlist given as one bucket plus an optional comma-separated list (env values); never empty. */
export function allowedBuckets(primary: string | undefined, extra: string | undefined): string[] {
  const all = [primary ?? '', ...(extra ?? '').split(',')].map((s) => s.trim()).filter(Boolean);
  return [...new Set(all)];
}

export interface ArtifactLocation {
  bucket: string;
  linesKey: string;
  wordsKey: string;
}

/**
 * Throws an InputError naming the field unless the bucket is a plain name on the allowlist and both keys are valid.
 * `fields` names them as the caller's input does (message fields at ingest, spec fields in the worker). Without an
 * allowlist (local mode, whose bucket is fixed) only the shape is checked.
 */
export function assertArtifactLocation(
  loc: ArtifactLocation,
  allowed: readonly string[] | undefined,
  fields: { bucket: string; linesKey: string; wordsKey: string },
): void {
  const bad = bucketNameProblem(loc.bucket);
  if (bad)
    throw new InputError(`${bad} (got ${JSON.stringify(loc.bucket.slice(0, 200))})`, {
      field: fields.bucket,
    });
  if (allowed && !allowed.includes(loc.bucket))
    throw new InputError(
      `bucket ${JSON.stringify(loc.bucket)} is not an allowed artifacts bucket (allowed: ${allowed.join(', ') || 'none'})`,
      { field: fields.bucket },
    );
  for (const [key, field] of [
    [loc.linesKey, fields.linesKey],
    [loc.wordsKey, fields.wordsKey],
  ] as const) {
    const p = objectKeyProblem(key);
    if (p) throw new InputError(`${p} (got ${JSON.stringify(key.slice(0, 200))})`, { field });
  }
}

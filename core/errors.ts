/**
 * Typed errors. Every error carries a machine-readable `reason` (used in EmbeddingJob conditions, DLQ attributes
 * and exit codes) and a context object with the ids it concerns, so logs and statuses can name the cause.
 */
export type ErrorReason =
  | 'BadInput'
  | 'SourceMissing'
  | 'InvalidMessage'
  | 'InvalidConfig'
  | 'DeltaCorrupt'
  | 'LeaseLost'
  | 'SnapshotDamaged'
  | 'BadUsage'
  | 'NotFound'
  | 'Transient';

export class PipelineError extends Error {
  readonly reason: ErrorReason;
  readonly context: Record<string, unknown>;
  /** Retrying the same input can succeed (network, throttling, 5xx). */
  readonly retryable: boolean;

  constructor(
    reason: ErrorReason,
    message: string,
    context: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.reason = reason;
    this.context = context;
    this.retryable = reason === 'Transient';
  }
}

/** A named object that does not exist (`embedctl get jobs <name>`); exit 1, like kubectl's NotFound. */
export class NotFoundError extends PipelineError {
  constructor(kind: string, name: string) {
    super('NotFound', `${kind} "${name}" not found`, { kind, name });
  }
}

/** Input that will never succeed as given: names the file, the 1-based row and the field. */
export class InputError extends PipelineError {
  constructor(
    message: string,
    readonly where: { file?: string; row?: number; field?: string } = {},
  ) {
    super('BadInput', formatWhere(where) + message, where);
  }
}

export class SourceMissingError extends PipelineError {
  constructor(bucket: string, key: string) {
    super('SourceMissing', `s3://${bucket}/${key} does not exist`, { bucket, key });
  }
}

/** An object over the size its reader accepts (GetOptions.maxBytes); the input's fault, so BadInput. */
export class ObjectTooLargeError extends PipelineError {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super('BadInput', `s3://${bucket}/${key} is ${size} bytes, over the limit of ${maxBytes}`, {
      bucket,
      key,
      size,
      maxBytes,
    });
  }
}

export class ConfigError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('InvalidConfig', message, context);
  }
}

/** A command line that cannot work as given (a bad flag value, a missing --home): exit code 2, no retry. */
export class UsageError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('BadUsage', message, context);
  }
}

/**
 * An object key that would leave its bucket (`..` or `.` segments, a leading `/`, empty segments): the key came from
 * the input (an EMBED message), so retrying cannot help. BadInput, in every object store.
 */
export class InvalidKeyError extends PipelineError {
  constructor(bucket: string, key: string, field?: string) {
    super(
      'BadInput',
      `${field ? `${field}: ` : ''}object key ${JSON.stringify(key)} escapes bucket ${bucket} (no "..", "." or empty segments, no leading "/")`,
      { bucket, key, ...(field ? { field } : {}) },
    );
  }
}

/** Throws InvalidKeyError unless `key` stays inside its bucket on every object store (S3 and the directory store). */
export function assertKeyInBucket(bucket: string, key: string, field?: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '.' || s === ''))
    throw new InvalidKeyError(bucket, key, field);
}

/**
 * Object metadata S3 would not take or would not give back as written: a value that is not a string (the original
 * system dead-lettered thousands of messages on an integer value raised inside boto3), a value outside printable
 * US-ASCII, a key that is not an HTTP header token, two keys equal but for case, or more than S3's 2 KB in all.
 * Raised by every object store before anything is sent or written; names the metadata key.
 */
export class InvalidMetadataError extends PipelineError {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly metadataKey: string,
    problem: string,
  ) {
    super('BadInput', `s3://${bucket}/${key}: metadata ${JSON.stringify(metadataKey)} ${problem}`, {
      bucket,
      key,
      metadataKey,
    });
  }
}

/** S3's limit on user metadata: the bytes of every key and value together (REST: `x-amz-meta-*` headers). */
export const MAX_METADATA_BYTES = 2048;
/** An HTTP field name (RFC 9110 token): S3 metadata keys travel as `x-amz-meta-{key}` headers. */
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Printable US-ASCII: S3 takes metadata values as header values over REST and withholds unprintable ones. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Throws InvalidMetadataError unless S3 would store `metadata` and return it unchanged: string values of printable
 * US-ASCII without surrounding spaces (HTTP trims them), header-token keys unique regardless of case, at most
 * MAX_METADATA_BYTES in all. Checked at run time, since a cast or untyped caller gets past the types.
 */
export function assertObjectMetadata(bucket: string, key: string, metadata: unknown): void {
  if (metadata === undefined) return;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))
    throw new InvalidMetadataError(
      bucket,
      key,
      '',
      `must be an object of strings, not ${describe(metadata)}`,
    );
  let bytes = 0;
  const seen = new Map<string, string>();
  for (const [k, v] of Object.entries(metadata as Record<string, unknown>)) {
    if (!HEADER_TOKEN.test(k))
      throw new InvalidMetadataError(
        bucket,
        key,
        k,
        "is not a valid key (letters, digits and !#$%&'*+-.^_`|~)",
      );
    const other = seen.get(k.toLowerCase());
    if (other !== undefined)
      throw new InvalidMetadataError(
        bucket,
        key,
        k,
        `differs from key ${JSON.stringify(other)} only in case`,
      );
    seen.set(k.toLowerCase(), k);
    if (typeof v !== 'string')
      throw new InvalidMetadataError(bucket, key, k, `must be a string, not ${describe(v)}`);
    if (!PRINTABLE_ASCII.test(v))
      throw new InvalidMetadataError(
        bucket,
        key,
        k,
        'must be printable US-ASCII (no control or non-ASCII characters)',
      );
    if (v !== v.trim())
      throw new InvalidMetadataError(
        bucket,
        key,
        k,
        'must not start or end with a space (HTTP would trim it)',
      );
    bytes += k.length + v.length;
    if (bytes > MAX_METADATA_BYTES)
      throw new InvalidMetadataError(
        bucket,
        key,
        k,
        `brings the metadata to ${bytes} bytes, over S3's limit of ${MAX_METADATA_BYTES} (keys and values together)`,
      );
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `the ${typeof v} ${String(v)}`;
}

export class TransientError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super('Transient', message, context, options);
  }
}

function formatWhere({ file, row, field }: { file?: string; row?: number; field?: string }): string {
  const parts = [
    file,
    row === undefined ? undefined : `row ${row}`,
    field === undefined ? undefined : `field ${field}`,
  ];
  const where = parts.filter((p) => p !== undefined).join(', ');
  return where ? `${where}: ` : '';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

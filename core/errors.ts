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

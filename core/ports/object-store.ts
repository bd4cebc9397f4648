import type { Readable } from 'node:stream';

/** S3 in the cloud, a directory locally. Keys are S3 keys; every method names its bucket. */
export interface ObjectInfo {
  key: string;
  size: number;
  metadata?: Record<string, string>;
}

/** What `put` stores: text, bytes, or a stream read to its end. */
export type PutBody = Buffer | string | Readable;

export interface PutOptions {
  contentType?: string;
  /**
   * String values only, as S3 demands, and checked at run time by every adapter before anything is sent or written
   * (InvalidMetadataError, naming the key): printable US-ASCII, header-token keys, at most 2 KB in all.
   */
  metadata?: Record<string, string>;
}

export interface GetOptions {
  /**
   * Refuse an object larger than this many bytes (ObjectTooLargeError) from its size, before any of its body is
   * read: input named by a message or a ledger row is never buffered or streamed unbounded.
   */
  maxBytes?: number;
}

export interface ObjectStore {
  /** Throws SourceMissingError when the object does not exist. */
  getStream(bucket: string, key: string, options?: GetOptions): Promise<Readable>;
  getBuffer(bucket: string, key: string, options?: GetOptions): Promise<Buffer>;
  /** Undefined when absent. */
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  put(bucket: string, key: string, body: PutBody, options?: PutOptions): Promise<void>;
  list(bucket: string, prefix: string): Promise<ObjectInfo[]>;
  delete(bucket: string, key: string): Promise<void>;
}

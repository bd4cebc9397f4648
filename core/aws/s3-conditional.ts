import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PutOptions } from '../ports/object-store.js';

/** An object's entity tag and, when it is at most `maxBytes`, its body. */
export interface TaggedObject {
  etag: string;
  size: number;
  /** Absent when the object is larger than the reader accepts (its body is not read). */
  body?: Buffer;
}

/**
 * Conditional writes on S3 (PutObject with If-Match / If-None-Match, answered 412 Precondition Failed when the object
 * changed, or 409 ConditionalRequestConflict when another conditional write to it is in flight). Moto honours both
 * headers since 5.x (checked with 5.2.5, the test server's version). Used for the snapshot pointer, which must never
 * be moved back by a slower writer (core/snapshot/s3-snapshot.ts).
 */
export class S3ConditionalWrites {
  constructor(private readonly client: S3Client) {}

  /** The object's ETag and body (up to `maxBytes`); undefined when it does not exist. */
  async getTagged(bucket: string, key: string, maxBytes: number): Promise<TaggedObject | undefined> {
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (isStatus(err, 404) || (err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
    const stream = res.Body as NodeJS.ReadableStream & { destroy(): void };
    const size = res.ContentLength ?? 0;
    const etag = res.ETag ?? '';
    if (size > maxBytes) {
      stream.destroy();
      return { etag, size };
    }
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
    return { etag, size, body: Buffer.concat(chunks) };
  }

  /**
   * Writes `body` only when the object still has entity tag `ifMatch` (undefined: only when there is no such object).
   * False when the condition failed: someone wrote it since it was read.
   */
  async putIf(
    bucket: string,
    key: string,
    body: string,
    ifMatch: string | undefined,
    options: PutOptions = {},
  ): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          Metadata: options.metadata,
          ...(ifMatch === undefined ? { IfNoneMatch: '*' } : { IfMatch: ifMatch }),
        }),
      );
      return true;
    } catch (err) {
      // 412: the object changed (or, for If-None-Match, now exists); 409: a concurrent conditional write won;
      // 404 with If-Match: the object was deleted since it was read.
      if (isStatus(err, 412) || isStatus(err, 409) || (ifMatch !== undefined && isStatus(err, 404)))
        return false;
      throw err;
    }
  }
}

function isStatus(err: unknown, code: number): boolean {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === code;
}

import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import {
  assertKeyInBucket,
  assertObjectMetadata,
  ObjectTooLargeError,
  SourceMissingError,
} from '../errors.js';
import type { GetOptions, ObjectInfo, ObjectStore, PutBody, PutOptions } from '../ports/object-store.js';
import { clientConfig, type AwsSettings } from './config.js';

const SINGLE_PUT_LIMIT = 8 * 1024 * 1024;

/** ObjectStore over S3. Large or streamed bodies go up as multipart uploads. */
export class S3Store implements ObjectStore {
  readonly client: S3Client;

  constructor(settings: AwsSettings, client?: S3Client) {
    this.client =
      client ??
      new S3Client({
        ...clientConfig(settings),
        forcePathStyle: Boolean(settings.endpoint),
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
  }

  async getStream(bucket: string, key: string, options: GetOptions = {}): Promise<Readable> {
    // S3 itself would take `../x` as a literal key; the directory store cannot. One rule for both: BadInput.
    assertKeyInBucket(bucket, key);
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) throw new SourceMissingError(bucket, key);
      throw err;
    }
    const body = res.Body as Readable;
    // The response's Content-Length is known before the body is read: refuse then, reading none of it.
    const size = res.ContentLength ?? 0;
    if (options.maxBytes !== undefined && size > options.maxBytes) {
      body.destroy();
      throw new ObjectTooLargeError(bucket, key, size, options.maxBytes);
    }
    return body;
  }

  async getBuffer(bucket: string, key: string, options: GetOptions = {}): Promise<Buffer> {
    const stream = await this.getStream(bucket, key, options);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks);
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    assertKeyInBucket(bucket, key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { key, size: res.ContentLength ?? 0, metadata: res.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(bucket: string, key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    assertKeyInBucket(bucket, key);
    // Before any request: the SDK would send a number as a header, and S3 keeps only printable ASCII.
    assertObjectMetadata(bucket, key, options.metadata);
    const params = { Bucket: bucket, Key: key, ContentType: options.contentType, Metadata: options.metadata };
    if (typeof body === 'string' || (Buffer.isBuffer(body) && body.length <= SINGLE_PUT_LIMIT)) {
      await this.client.send(new PutObjectCommand({ ...params, Body: body }));
      return;
    }
    await new Upload({
      client: this.client,
      params: { ...params, Body: body },
      partSize: SINGLE_PUT_LIMIT,
      queueSize: 4,
    }).done();
  }

  async list(bucket: string, prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

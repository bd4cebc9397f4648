import { beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import { ObjectTooLargeError } from '../../../core/errors.js';
import '../../harness/env.js';
import { awsSettings, createBucket } from '../../support/aws.js';

const env = inject('testEnv');
let store: S3Store;
let bucket: string;

beforeAll(async () => {
  store = new S3Store(awsSettings(env));
  bucket = await createBucket(store, 'size');
  await store.put(bucket, 'big/words.ndjson', Buffer.alloc(5000, 0x78));
});

/** Issue 18 item 10: NDJSON and deltas are refused from their size (GetObject's Content-Length), not after reading. */
describe('S3 objects over a reader limit (moto)', () => {
  it('getStream and getBuffer refuse an object larger than maxBytes, naming it; at the limit it is read', async () => {
    const err = await store
      .getStream(bucket, 'big/words.ndjson', { maxBytes: 4999 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect(err).toMatchObject({ reason: 'BadInput', size: 5000, maxBytes: 4999 });
    expect((err as Error).message).toBe(
      `s3://${bucket}/big/words.ndjson is 5000 bytes, over the limit of 4999`,
    );
    await expect(store.getBuffer(bucket, 'big/words.ndjson', { maxBytes: 100 })).rejects.toThrow(
      ObjectTooLargeError,
    );
    expect((await store.getBuffer(bucket, 'big/words.ndjson', { maxBytes: 5000 })).length).toBe(5000);
  });
});

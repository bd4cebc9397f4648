import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import { InvalidMetadataError, MAX_METADATA_BYTES } from '../../../core/errors.js';
import { DirectoryObjectStore } from '../../../core/local/dir-store.js';

/**
 * Object metadata is checked at run time, not only by the types: the original system dead-lettered thousands of
 * messages because an integer metadata value raised inside boto3. Every case passes a value the types forbid.
 */
const bad: [name: string, metadata: Record<string, unknown>, key: string, message: RegExp][] = [
  ['a number', { run_id: 'r1', vectors: 3 }, 'vectors', /must be a string, not the number 3/],
  ['a boolean', { ok: true }, 'ok', /must be a string, not the boolean true/],
  ['null', { sha256: null }, 'sha256', /must be a string, not null/],
  ['undefined', { job: undefined }, 'job', /must be a string, not undefined/],
  ['an object', { nested: { a: '1' } }, 'nested', /must be a string, not an object/],
  ['non-ASCII', { merchant: 'Café' }, 'merchant', /printable US-ASCII/],
  ['a control character', { note: 'a\nb' }, 'note', /printable US-ASCII/],
  ['a surrounding space', { note: ' padded' }, 'note', /start or end with a space/],
  ['a key that is no header token', { 'run id': 'r1' }, 'run id', /not a valid key/],
  ['keys equal but for case', { sha256: 'a', SHA256: 'b' }, 'SHA256', /only in case/],
  ['over 2 KB in all', { a: 'x'.repeat(1500), b: 'y'.repeat(600) }, 'b', /over S3's limit of 2048/],
];

function fakeS3(): { client: S3Client; sent: unknown[] } {
  const sent: unknown[] = [];
  const client = {
    send: async (command: unknown) => {
      sent.push(command);
      return {};
    },
    config: {},
  } as unknown as S3Client;
  return { client, sent };
}

describe('S3Store refuses metadata S3 would not store as given, before any request', () => {
  it.each(bad)('%s', async (_name, metadata, key, message) => {
    const { client, sent } = fakeS3();
    const store = new S3Store({ region: 'us-east-1' }, client);
    const put = store.put('vectors', 'lines/delta/r1/delta.arrow', Buffer.from('x'), {
      metadata: metadata as unknown as Record<string, string>,
    });
    await expect(put).rejects.toBeInstanceOf(InvalidMetadataError);
    await expect(put).rejects.toMatchObject({ reason: 'BadInput', metadataKey: key, message });
    await expect(put).rejects.toThrow(
      `s3://vectors/lines/delta/r1/delta.arrow: metadata ${JSON.stringify(key)}`,
    );
    expect(sent).toEqual([]);
  });

  it('a streamed (multipart) body is refused the same way, and valid metadata goes through', async () => {
    const { client, sent } = fakeS3();
    const store = new S3Store({ region: 'us-east-1' }, client);
    const body = Readable.from([Buffer.from('x')]);
    await expect(
      store.put('vectors', 'k', body, { metadata: { vectors: 3 } as unknown as Record<string, string> }),
    ).rejects.toMatchObject({ metadataKey: 'vectors' });
    expect(sent).toEqual([]);
    const ok: Record<string, string> = { run_id: 'r1', vectors: '3', 'x.y-z_1': '~!@#$%^&*() printable' };
    // Exactly S3's limit, keys and values together.
    ok.z = 'z'.repeat(
      MAX_METADATA_BYTES - Object.entries(ok).reduce((s, [k, v]) => s + k.length + v.length, 1),
    );
    await store.put('vectors', 'k', Buffer.from('x'), { metadata: ok });
    expect(sent).toHaveLength(1);
  });
});

describe('DirectoryObjectStore refuses the same metadata, writing nothing', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'dir-store-meta-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it.each(bad)('%s', async (_name, metadata, key, message) => {
    const store = new DirectoryObjectStore(root);
    const put = store.put('vectors', 'lines/delta/r1/delta.arrow', 'x', {
      metadata: metadata as unknown as Record<string, string>,
    });
    await expect(put).rejects.toBeInstanceOf(InvalidMetadataError);
    await expect(put).rejects.toMatchObject({ metadataKey: key, message });
    expect(readdirSync(root)).toEqual([]);
    expect(await store.head('vectors', 'lines/delta/r1/delta.arrow')).toBeUndefined();
  });
});

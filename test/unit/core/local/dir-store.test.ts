import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import { ConfigError, InvalidKeyError, SourceMissingError } from '../../../../core/errors.js';

let root: string;
let store: DirectoryObjectStore;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'dir-store-'));
  store = new DirectoryObjectStore(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('DirectoryObjectStore', () => {
  it('puts buffers, strings and streams; reads them back as buffer and stream', async () => {
    await store.put('artifacts', 'a/lines.ndjson', 'one\ntwo\n');
    await store.put('artifacts', 'a/words.ndjson', Buffer.from('w'));
    await store.put('artifacts', 'b/big.bin', Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(5, 2)]));
    expect((await store.getBuffer('artifacts', 'a/lines.ndjson')).toString()).toBe('one\ntwo\n');
    expect(await text(await store.getStream('artifacts', 'a/words.ndjson'))).toBe('w');
    expect((await store.head('artifacts', 'b/big.bin'))?.size).toBe(100_005);
    expect(readdirSync(root).sort()).toEqual(['.meta', '.tmp', 'artifacts']);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('keeps string metadata in a sidecar (keys lower-cased like S3) and replaces it with the object', async () => {
    await store.put('d', 'k', 'x', { metadata: { SHA256: 'abc', rows: '3' } });
    expect(await store.head('d', 'k')).toEqual({ key: 'k', size: 1, metadata: { sha256: 'abc', rows: '3' } });
    await store.put('d', 'k', 'yy');
    expect(await store.head('d', 'k')).toEqual({ key: 'k', size: 2 });
    await store.delete('d', 'k');
    expect(await store.head('d', 'k')).toBeUndefined();
    await store.delete('d', 'k'); // absent: fine, as in S3
  });

  it('throws SourceMissingError for absent objects, from getBuffer and getStream alike', async () => {
    await expect(store.getBuffer('d', 'nope')).rejects.toBeInstanceOf(SourceMissingError);
    await expect(store.getStream('d', 'a/nope')).rejects.toBeInstanceOf(SourceMissingError);
  });

  it('lists by prefix in key order, across directories, without temp or metadata files', async () => {
    for (const k of [
      'lines/delta/r2/delta.arrow',
      'lines/delta/r1/delta.arrow',
      'lines/deltax',
      'words/delta/r1/delta.arrow',
    ])
      await store.put('b', k, k, { metadata: { m: '1' } });
    expect((await store.list('b', 'lines/delta')).map((o) => o.key)).toEqual([
      'lines/delta/r1/delta.arrow',
      'lines/delta/r2/delta.arrow',
      'lines/deltax',
    ]);
    expect((await store.list('b', 'lines/delta/')).map((o) => o.key)).toHaveLength(2);
    expect((await store.list('b', '')).map((o) => o.key)).toHaveLength(4);
    expect(await store.list('b', 'missing/')).toEqual([]);
    expect(await store.list('nobucket', '')).toEqual([]);
  });

  it('is atomic: a failing stream leaves the previous object intact and no temp file behind', async () => {
    await store.put('d', 'k', 'old');
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(10_000, 7));
        this.destroy(new Error('network cut'));
      },
    });
    await expect(store.put('d', 'k', failing)).rejects.toThrow('network cut');
    expect((await store.getBuffer('d', 'k')).toString()).toBe('old');
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('concurrent writers of one key leave one whole version, never a mix', async () => {
    const a = Buffer.alloc(1 << 20, 'a');
    const b = Buffer.alloc(1 << 20, 'b');
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put('d', 'k', i % 2 ? a : b)));
    const got = await store.getBuffer('d', 'k');
    expect(got.equals(a) || got.equals(b)).toBe(true);
  });

  it('rejects keys that escape the bucket and invalid bucket names', async () => {
    // A key that escapes its bucket is bad input (never retried), not a configuration problem.
    await expect(store.put('d', '../x', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.put('d', '/abs', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.getStream('d', 'a/../../etc/passwd')).rejects.toMatchObject({ reason: 'BadInput' });
    await expect(store.put('../d', 'x', 'x')).rejects.toBeInstanceOf(ConfigError);
  });
});

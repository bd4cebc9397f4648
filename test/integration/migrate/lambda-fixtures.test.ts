// The fixture writer (test/fixtures/lambda/write_fixtures.py) writes what the original wrote, with its own library:
// Python chromadb 1.5.x directories in the S3 layouts of seed-system.md §7, uploaded to moto's S3.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import '../../harness/env.js';
import { awsSettings, createBucket } from '../../support/aws.js';
import { CHROMADB_PY_VERSION, lambdaFixtures, type LambdaFixtures } from '../../support/lambda-fixtures.js';

const env = inject('testEnv');
let store: S3Store;
let fx: LambdaFixtures;

beforeAll(() => {
  store = new S3Store(awsSettings(env));
  fx = lambdaFixtures({
    seed: 11,
    dim: 16,
    snapshots: [
      { collection: 'lines', count: 120, layout: 'tar', version: '20260714_120000', churn: true },
      { collection: 'words', count: 90, layout: 'legacy', version: '20260714_120001' },
    ],
    deltas: [
      { collection: 'lines', count: 7, layout: 'tar', run_id: '5b0d7c1e-6f0a-4a4e-9a51-0c7f1d2e3a4b' },
      {
        collection: 'words',
        count: 9,
        layout: 'files',
        run_id: '8c2f3b9a-1d4e-4f6a-b7c8-9d0e1f2a3b4c',
        trailing_slash: true,
        era: 'A',
      },
    ],
  });
}, 600_000);

describe('Lambda fixtures written by Python chromadb 1.5.x', () => {
  it('land in the original S3 layout: pointer, md5-hashed tarball, legacy files, both delta layouts', async () => {
    expect(fx.manifest.chromadb).toBe(CHROMADB_PY_VERSION);
    const bucket = await createBucket(store, 'lambda-fx');
    await fx.upload(store, bucket);
    const text = async (k: string) => (await store.getBuffer(bucket, k)).toString('utf8');
    expect(await text('lines/snapshot/latest-pointer.txt')).toBe('20260714_120000');
    const tarball = await store.getBuffer(
      bucket,
      'lines/snapshot/timestamped/20260714_120000/snapshot.tar.gz',
    );
    expect(await text('lines/snapshot/timestamped/20260714_120000/.snapshot_hash')).toBe(
      `md5:${createHash('md5').update(tarball).digest('hex')}`,
    );
    const legacy = await store.list(bucket, 'words/snapshot/timestamped/20260714_120001/');
    expect(legacy.map((o) => o.key.split('/').pop())).toEqual(
      expect.arrayContaining(['chroma.sqlite3', 'data_level0.bin', 'header.bin']),
    );
    const [tarDelta, filesDelta] = fx.manifest.deltas;
    expect(tarDelta!.prefix).toBe('lines/delta/5b0d7c1e-6f0a-4a4e-9a51-0c7f1d2e3a4b');
    expect(await store.head(bucket, `${tarDelta!.prefix}/delta.tar.gz`)).toBeDefined();
    expect(filesDelta!.prefix).toMatch(
      /^words\/delta\/8c2f3b9a-1d4e-4f6a-b7c8-9d0e1f2a3b4c\/[0-9a-f]{32}\/$/,
    );
    expect((await store.list(bucket, filesDelta!.prefix)).map((o) => o.key)).toContain(
      `${filesDelta!.prefix}chroma.sqlite3`,
    );
  });

  it('records what chromadb 1.5.x reads back: ids in the original format, its metadata shapes, unit vectors', () => {
    const lines = fx.expected('snapshot-lines-20260714_120000');
    expect(lines.ids.length).toBe(fx.manifest.snapshots[0]!.count);
    expect(lines.ids.length).toBeLessThan(120); // churn deleted some
    expect(lines.ids[0]).toMatch(/^IMAGE#[0-9a-f-]{36}#RECEIPT#\d{5}#LINE#\d{5}$/);
    expect(lines.metadatas.some((m) => Array.isArray(m?.valid_labels_array))).toBe(true);
    expect(lines.metadatas.some((m) => typeof m?.receipt_id === 'string')).toBe(true); // era-A records
    const norm = Math.hypot(...lines.embeddings[0]!);
    expect(norm).toBeCloseTo(1, 5);
    const words = fx.expected(fx.manifest.deltas[1]!.name);
    expect(words.ids[0]).toMatch(/#WORD#\d{5}$/);
    expect(words.metadatas.every((m) => m?.embedding_type === 'word')).toBe(true);
  });
});

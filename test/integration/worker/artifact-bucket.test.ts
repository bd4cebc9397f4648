import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { LocalEmbedder } from '../../../core/embedding/local-embedder.js';
import { generateReceipt, putReceipt } from '../../../core/sample/index.js';
import { processBatch } from '../../../worker/batch.js';
import type { WorkerDeps } from '../../../worker/context.js';
import { runIdFor } from '../../../worker/run-id.js';
import '../../harness/env.js';
import { awsFixtures, DIMS, log, memoryReporter, workItem } from './helpers.js';

const env = inject('testEnv');
let fx: Awaited<ReturnType<typeof awsFixtures>>;

beforeAll(async () => {
  fx = await awsFixtures(env, 'bucket');
});

/** Issue 18 item 3, defence in depth: an EmbeddingJob made by hand reaches the worker without passing ingest. */
describe('worker: only the configured artifacts buckets are read', () => {
  it('fails an item naming another bucket, an ARN or an over-long key as BadInput naming the spec field', async () => {
    const r = generateReceipt(7300);
    const msg = await putReceipt(fx.store, fx.artifacts, r);
    // The same receipt in a second, real bucket the worker's credentials can read: still refused.
    const other = `${fx.artifacts}-other`;
    await fx.store.client.send(new CreateBucketCommand({ Bucket: other }));
    await putReceipt(fx.store, other, r);
    const items = [
      workItem({ ...msg, artifacts_bucket: other }, 'ej-other-bucket'),
      workItem(
        { ...msg, artifacts_bucket: 'arn:aws:s3:us-east-1:999999999999:accesspoint/attacker' },
        'ej-access-point',
      ),
      workItem({ ...msg, words_key: `${'w/'.repeat(600)}words.ndjson` }, 'ej-long-key'),
      workItem(msg, 'ej-allowed'),
    ];
    const d = {
      store: fx.store,
      ledger: fx.ledger,
      embedder: new LocalEmbedder(DIMS),
      vectorsBucket: fx.vectors,
      artifactBuckets: [fx.artifacts],
      log,
      reporter: memoryReporter(),
    } satisfies WorkerDeps;
    const out = await processBatch(d, items);
    expect(out.exitCode).toBe(0);
    const byName = new Map(d.reporter.reports.map((x) => [x.name, x]));
    expect(byName.get('ej-other-bucket')).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringMatching(/^field spec\.artifactsBucket: bucket ".*-other" is not an allowed/),
    });
    expect(byName.get('ej-access-point')).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringMatching(/^field spec\.artifactsBucket: must be a plain DNS-style bucket name/),
    });
    expect(byName.get('ej-long-key')).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringMatching(/^field spec\.wordsKey: object key is longer than 1024 bytes/),
    });
    expect(byName.get('ej-allowed')).toMatchObject({ outcome: 'Succeeded' });
    for (const it of items.slice(0, 3))
      expect(await fx.ledger.getRun(it.spec.imageId, it.spec.receiptId, runIdFor(it, 1))).toBeUndefined();
  });
});

import { beforeAll, describe, expect, inject, it } from 'vitest';
import { CompactionRunItem, runKey } from '../../../core/contracts/compaction-run.js';
import { deltaKey } from '../../../core/contracts/ids.js';
import { decodeDelta } from '../../../core/delta/arrow-delta.js';
import { LocalEmbedder } from '../../../core/embedding/local-embedder.js';
import { buildReceiptItems } from '../../../core/receipt/embedding-inputs.js';
import { generateReceipt, putReceipt } from '../../../core/sample/index.js';
import { detect } from '../../../stream/change-detection.js';
import { processBatch } from '../../../worker/batch.js';
import type { WorkerDeps } from '../../../worker/context.js';
import type { WorkItem } from '../../../worker/work-item.js';
import { runIdFor } from '../../../worker/run-id.js';
import '../../harness/env.js';
import { awsFixtures, DIMS, log, memoryReporter, workItem } from './helpers.js';

const env = inject('testEnv');
let fx: Awaited<ReturnType<typeof awsFixtures>>;

beforeAll(async () => {
  fx = await awsFixtures(env, 'collections');
});

function deps() {
  return {
    store: fx.store,
    ledger: fx.ledger,
    embedder: new LocalEmbedder(DIMS),
    vectorsBucket: fx.vectors,
    log,
    reporter: memoryReporter(),
  } satisfies WorkerDeps;
}

/**
 * Issue 17 item 4: a job whose `spec.collections` leaves a collection out used to upload an empty delta for it and
 * write it PENDING in the run, which the compactor then FAILED ("delta is empty"). Now nothing exists for it.
 */
describe('worker: a job limited by spec.collections', () => {
  it.each([
    ['lines', 'words'],
    ['words', 'lines'],
  ] as const)(
    'collections [%s]: only its delta in S3, a run row without %s fields, one message on its queue',
    async (wanted, left) => {
      const r = generateReceipt(wanted === 'lines' ? 7600 : 7601);
      const base = workItem(await putReceipt(fx.store, fx.artifacts, r), `ej-only-${wanted}`);
      const item: WorkItem = { ...base, spec: { ...base.spec, collections: [wanted] } };
      const d = deps();
      const out = await processBatch(d, [item]);
      expect(out.exitCode).toBe(0);
      const rep = d.reporter.reports[0]!;
      expect(rep.outcome, rep.message).toBe('Succeeded');
      const runId = runIdFor(item, 1);
      const expected = buildReceiptItems({
        imageId: r.imageId,
        receiptId: r.receiptId,
        lines: r.lines,
        words: r.words,
      });
      const count = { lines: expected.lines.length, words: expected.words.length };

      // S3: the asked-for delta, and no object at all under the other collection's prefix.
      expect(await fx.store.list(fx.vectors, `${left}/delta/${runId}/`)).toEqual([]);
      expect(await fx.store.head(fx.vectors, deltaKey(left, runId))).toBeUndefined();
      const { records } = decodeDelta(await fx.store.getBuffer(fx.vectors, deltaKey(wanted, runId)));
      expect(records).toHaveLength(count[wanted]);

      // DynamoDB: the row as stored carries no field of the other collection.
      const row = (await fx.ledger.getItem(runKey(r.imageId, r.receiptId, runId)))!;
      expect(row).toMatchObject({
        [`${wanted}_state`]: 'PENDING',
        [`${wanted}_delta_key`]: deltaKey(wanted, runId),
        [`${wanted}_vectors`]: count[wanted],
      });
      expect(Object.keys(row).filter((k) => k.startsWith(`${left}_`))).toEqual([]);
      expect(CompactionRunItem.safeParse(row).success).toBe(true);

      // The report names no delta and no vectors for the other collection.
      expect(rep.result).toMatchObject({
        runId,
        [`${wanted}DeltaKey`]: deltaKey(wanted, runId),
        ...(wanted === 'lines' ? { rows: count.lines, words: 0 } : { rows: 0, words: count.words }),
      });
      expect(rep.result).not.toHaveProperty(`${left}DeltaKey`);

      // The stream processor turns this row's INSERT into one message, on the asked-for queue.
      const msgs = detect(
        { id: 'ev-1', eventName: 'INSERT', keys: { PK: row.PK, SK: row.SK }, newImage: row },
        new Date().toISOString(),
      ).messages;
      expect(msgs.map((m) => m.collection)).toEqual([wanted]);
      expect(msgs[0]!.message.entity_data).toMatchObject({ delta_key: deltaKey(wanted, runId) });
    },
  );
});

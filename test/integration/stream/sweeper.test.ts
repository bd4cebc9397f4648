// The pending-run sweeper against moto (DynamoDB + SQS): a CompactionRun left PENDING past the threshold with no
// stream record for it (a stream gap longer than the 24 h retention) is re-announced with exactly the message its
// INSERT would have produced; fresh and finished runs are left alone.
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { DynamoLedger, ensureTable } from '../../../core/aws/dynamo-ledger.js';
import { SqsQueue } from '../../../core/aws/sqs-queue.js';
import { newCompactionRun, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import type { Collection } from '../../../core/contracts/ids.js';
import type { Item } from '../../../core/ports/ledger.js';
import type { QueueMessage } from '../../../core/ports/queue.js';
import { detect } from '../../../stream/change-detection.js';
import { pendingRunSweeperFromEnv } from '../../../stream/from-env.js';
import { StreamMetrics } from '../../../stream/metrics.js';
import { PendingRunSweeper } from '../../../stream/sweeper.js';
import { awsSettings, createQueueWithDlq, uniqueName } from '../../support/aws.js';

const env = inject('testEnv');
const settings = awsSettings(env);
const log = pino({ level: 'silent' });
const sha = 'c'.repeat(64);
const HOUR = 3_600_000;

let table: string;
let ledger: DynamoLedger;
let urls: Record<Collection, string>;
let queues: Record<Collection, SqsQueue>;
const runs: Record<'old' | 'fresh' | 'completed' | 'half', CompactionRunItem> = {} as never;

function run(runId: string, createdAgoMs: number): CompactionRunItem {
  return newCompactionRun({
    runId,
    imageId: randomUUID(),
    receiptId: 7,
    jobName: `ej-${runId}`,
    deltas: {
      lines: { key: `lines/delta/${runId}/delta.arrow`, sha256: sha, vectors: 3 },
      words: { key: `words/delta/${runId}/delta.arrow`, sha256: sha, vectors: 11 },
    },
    now: new Date(Date.now() - createdAgoMs),
  });
}

/** Everything in the queue now (receives until one comes back empty), deleting what it got. */
async function drain(q: SqsQueue): Promise<QueueMessage[]> {
  const out: QueueMessage[] = [];
  for (;;) {
    const got = await q.receive({ maxMessages: 10, waitSeconds: 1 });
    if (got.length === 0) return out;
    out.push(...got);
    await q.deleteBatch(got.map((m) => m.handle));
  }
}

/** What the stream processor sends for the run's INSERT to `collection`, minus the per-send fields. */
function insertMessage(item: CompactionRunItem, collection: Collection): Record<string, unknown> {
  const d = detect(
    {
      id: 'stream-record',
      eventName: 'INSERT',
      keys: { PK: item.PK, SK: item.SK },
      newImage: item as unknown as Item,
      region: settings.region,
    },
    'T',
  );
  const {
    timestamp: _t,
    stream_record_id: _s,
    ...rest
  } = d.messages.find((m) => m.collection === collection)!.message;
  return rest;
}

function withoutPerSend(body: string): Record<string, unknown> {
  const { timestamp: _t, stream_record_id: _s, ...rest } = JSON.parse(body) as Record<string, unknown>;
  return rest;
}

beforeAll(async () => {
  table = uniqueName('sweep');
  ledger = new DynamoLedger(table, settings);
  await ensureTable(ledger.client, table);
  urls = {
    lines: (await createQueueWithDlq(settings, 'sweep-lines')).url,
    words: (await createQueueWithDlq(settings, 'sweep-words')).url,
  };
  queues = { lines: new SqsQueue(urls.lines, settings), words: new SqsQueue(urls.words, settings) };
  // Written straight to the table: no stream processor runs, so nothing announced them (the gap).
  runs.old = run('old-pending', 2 * HOUR);
  runs.fresh = run('fresh-pending', 60_000);
  runs.completed = run('old-completed', 3 * HOUR);
  runs.half = run('old-half', 2 * HOUR);
  for (const r of Object.values(runs)) expect(await ledger.putRunIfAbsent(r)).toBe(true);
  const key = (r: CompactionRunItem) => ({ imageId: r.image_id, receiptId: r.receipt_id, runId: r.run_id });
  for (const c of ['lines', 'words'] as const)
    await ledger.setRunCollection(key(runs.completed), c, { state: 'COMPLETED', mergedVectors: 1 });
  await ledger.setRunCollection(key(runs.half), 'lines', { state: 'COMPLETED', mergedVectors: 3 });
});

describe('PendingRunSweeper on DynamoDB + SQS', () => {
  it('lists only old PENDING runs (DynamoLedger.pendingRuns)', async () => {
    const found = await ledger.pendingRuns(new Date(Date.now() - 30 * 60_000), 100);
    expect(found.map((r) => r.run_id).sort()).toEqual(['old-half', 'old-pending']);
    expect(await ledger.pendingRuns(new Date(Date.now() - 30 * 60_000), 1)).toHaveLength(1);
  });

  it('re-announces a run PENDING past the threshold with exactly its INSERT message, once per collection; fresh and COMPLETED runs are not swept', async () => {
    const metrics = new StreamMetrics();
    const counter = async (c: Collection) =>
      (await metrics.sweptRuns.get()).values.find((v) => v.labels.collection === c)?.value ?? 0;
    const before = { lines: await counter('lines'), words: await counter('words') };
    const sweeper = new PendingRunSweeper({
      ledger,
      queues,
      log,
      metrics,
      afterMs: 30 * 60_000,
      region: settings.region,
    });
    expect(await sweeper.sweepOnce(AbortSignal.timeout(30_000))).toEqual({ runs: 2, messages: 3 });

    const lines = await drain(queues.lines);
    const words = await drain(queues.words);
    // lines: only old-pending (old-half's lines is COMPLETED); words: old-pending and old-half.
    expect(lines.map((m) => JSON.parse(m.body).entity_data.run_id)).toEqual(['old-pending']);
    expect(words.map((m) => JSON.parse(m.body).entity_data.run_id).sort()).toEqual([
      'old-half',
      'old-pending',
    ]);
    expect(withoutPerSend(lines[0]!.body)).toEqual(insertMessage(runs.old, 'lines'));
    expect(JSON.parse(lines[0]!.body)).toMatchObject({
      entity_type: 'COMPACTION_RUN',
      event_name: 'INSERT',
      entity_data: {
        run_id: 'old-pending',
        delta_key: 'lines/delta/old-pending/delta.arrow',
        sha256: sha,
        vectors: 3,
        job_name: 'ej-old-pending',
      },
      stream_record_id: expect.stringMatching(/^sweep-old-pending-/),
    });
    expect(lines[0]!.attributes).toMatchObject({ collection: 'lines', entity_type: 'COMPACTION_RUN' });
    for (const m of words) {
      const id = JSON.parse(m.body).entity_data.run_id as string;
      expect(withoutPerSend(m.body)).toEqual(
        insertMessage(id === 'old-half' ? runs.half : runs.old, 'words'),
      );
      expect(m.attributes.collection).toBe('words');
    }
    expect(await counter('lines')).toBe(before.lines + 1);
    expect(await counter('words')).toBe(before.words + 2);

    // The same process does not re-announce them again before another threshold has passed.
    expect(await sweeper.sweepOnce()).toEqual({ runs: 0, messages: 0 });
    expect(await drain(queues.lines)).toHaveLength(0);
  });

  it('runs from the environment every STREAM_SWEEP_INTERVAL_MS until stopped', async () => {
    const sweeper = pendingRunSweeperFromEnv({
      log,
      env: {
        LEDGER_TABLE: table,
        LINES_QUEUE_URL: urls.lines,
        WORDS_QUEUE_URL: urls.words,
        AWS_REGION: settings.region,
        AWS_ENDPOINT_URL: settings.endpoint,
        AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
        STREAM_SWEEP_INTERVAL_MS: '300',
        STREAM_SWEEP_AFTER_MS: String(30 * 60_000),
      },
    })!;
    expect(sweeper.intervalMs).toBe(300);
    const stop = new AbortController();
    const running = sweeper.run(stop.signal);
    const got: QueueMessage[] = [];
    for (let i = 0; i < 20 && got.length < 1; i++) got.push(...(await drain(queues.lines)));
    stop.abort();
    await running;
    expect(got.map((m) => JSON.parse(m.body).entity_data.run_id)).toEqual(['old-pending']);
    expect(pendingRunSweeperFromEnv({ env: { STREAM_SWEEP_INTERVAL_MS: '0' } })).toBeUndefined();
  });
});

import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Readable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import OpenAI from 'openai';
import '../../harness/env.js';
import { S3Store } from '../../../core/aws/s3-store.js';
import { SqsQueue } from '../../../core/aws/sqs-queue.js';
import { DynamoLedger, ensureTable } from '../../../core/aws/dynamo-ledger.js';
import { clientConfig } from '../../../core/aws/config.js';
import { ChromaVectorStore } from '../../../core/chroma/store.js';
import { similarity } from '../../../core/contracts/vector-distance.js';
import { newCompactionRun } from '../../../core/contracts/compaction-run.js';
import { SourceMissingError } from '../../../core/errors.js';
import { embedText } from '../../../core/embedding/local-embedder.js';
import { awsSettings, createBucket, createQueueWithDlq, uniqueName } from '../../support/aws.js';

const env = inject('testEnv');
const settings = awsSettings(env);

describe('S3 store on the real S3 protocol server', () => {
  const store = new S3Store(settings);
  let bucket: string;
  beforeAll(async () => {
    bucket = await createBucket(store);
  });

  it('puts, heads, lists, gets and deletes; string metadata survives', async () => {
    await store.put(bucket, 'receipts/a/lines.ndjson', '{"a":1}\n', {
      contentType: 'application/x-ndjson',
      metadata: { run_id: 'r1' },
    });
    expect(await store.head(bucket, 'receipts/a/lines.ndjson')).toMatchObject({
      size: 8,
      metadata: { run_id: 'r1' },
    });
    expect((await store.getBuffer(bucket, 'receipts/a/lines.ndjson')).toString()).toBe('{"a":1}\n');
    expect((await store.list(bucket, 'receipts/')).map((o) => o.key)).toEqual(['receipts/a/lines.ndjson']);
    await store.delete(bucket, 'receipts/a/lines.ndjson');
    expect(await store.head(bucket, 'receipts/a/lines.ndjson')).toBeUndefined();
  });

  it('uploads a 20 MiB stream as multipart and reads back the same bytes', async () => {
    const body = randomBytes(20 * 1024 * 1024);
    await store.put(
      bucket,
      'big.bin',
      Readable.from([body.subarray(0, 7_000_000), body.subarray(7_000_000)]),
    );
    expect((await store.getBuffer(bucket, 'big.bin')).equals(body)).toBe(true);
  });

  it('a missing object is a SourceMissingError naming bucket and key', async () => {
    await expect(store.getStream(bucket, 'nope/lines.ndjson')).rejects.toThrow(SourceMissingError);
    await expect(store.getStream(bucket, 'nope/lines.ndjson')).rejects.toThrow(
      `s3://${bucket}/nope/lines.ndjson`,
    );
  });
});

describe('SQS queue on the real SQS protocol server', () => {
  it('sends 25 in batches, receives with attributes, redelivers after the visibility timeout', async () => {
    const { url, dlqUrl } = await createQueueWithDlq(settings, 'smoke');
    const q = new SqsQueue(url, settings, dlqUrl);
    await q.send(
      Array.from({ length: 25 }, (_, i) => ({ body: `m${i}`, attributes: { collection: 'lines' } })),
    );
    expect((await q.depth()).visible).toBe(25);
    const first = await q.receive({ maxMessages: 10, waitSeconds: 1, visibilitySeconds: 1 });
    expect(first).toHaveLength(10);
    expect(first[0]).toMatchObject({ attributes: { collection: 'lines' }, receiveCount: 1 });
    await sleep(1500);
    const again = await q.receive({ maxMessages: 10, waitSeconds: 2 });
    expect(again.some((m) => m.receiveCount === 2)).toBe(true);
  });

  it('deadLetter moves a message to the DLQ with its reason; SQS redrives after maxReceiveCount', async () => {
    const { url, dlqUrl } = await createQueueWithDlq(settings, 'dlq', { maxReceiveCount: 2 });
    const q = new SqsQueue(url, settings, dlqUrl);
    const dlq = new SqsQueue(dlqUrl, settings);
    await q.send([{ body: 'not json' }]);
    const [m] = await q.receive({ waitSeconds: 1 });
    await q.deadLetter(m!, 'InvalidMessage: body is not JSON');
    const [dead] = await dlq.receive({ waitSeconds: 2 });
    expect(dead).toMatchObject({
      body: 'not json',
      attributes: { dlq_reason: 'InvalidMessage: body is not JSON', dlq_original_message_id: m!.id },
    });
    expect((await q.depth()).visible + (await q.depth()).inFlight).toBe(0);

    // Poison message never deleted: the queue's redrive policy moves it after two receives.
    await q.send([{ body: 'poison' }]);
    for (let i = 0; i < 2; i++) {
      expect(await q.receive({ waitSeconds: 2, visibilitySeconds: 1 })).toHaveLength(1);
      await sleep(1100);
    }
    expect(await q.receive({ waitSeconds: 1 })).toHaveLength(0);
    const redriven = await dlq.receive({ waitSeconds: 2 });
    expect(redriven.map((r) => r.body)).toContain('poison');
  });
});

describe('DynamoDB ledger on the real DynamoDB + Streams server', () => {
  it('writes a run once (conditional), updates one collection, and the put shows on the stream', async () => {
    const table = uniqueName('ledger');
    const ledger = new DynamoLedger(table, settings);
    const { streamArn } = await ensureTable(ledger.client, table);
    expect(streamArn).toBeTruthy();

    const imageId = randomUUID();
    const sha = 'b'.repeat(64);
    const run = newCompactionRun({
      runId: 'run-1',
      imageId,
      receiptId: 3,
      deltas: {
        lines: { key: 'lk', sha256: sha, vectors: 2 },
        words: { key: 'wk', sha256: sha, vectors: 5 },
      },
    });
    expect(await ledger.putRunIfAbsent(run)).toBe(true);
    expect(await ledger.putRunIfAbsent({ ...run, lines_vectors: 99 })).toBe(false);
    await ledger.setRunCollection({ imageId, receiptId: 3, runId: 'run-1' }, 'lines', {
      state: 'COMPLETED',
      mergedVectors: 2,
    });
    // FAILED never overwrites COMPLETED; words is untouched by the lines update.
    await ledger.setRunCollection({ imageId, receiptId: 3, runId: 'run-1' }, 'lines', {
      state: 'FAILED',
      error: 'x',
    });
    const stored = await ledger.getRun(imageId, 3, 'run-1');
    expect(stored).toMatchObject({
      lines_state: 'COMPLETED',
      lines_merged_vectors: 2,
      words_state: 'PENDING',
      lines_vectors: 2,
    });
    expect(stored?.lines_error).toBeUndefined();

    const streams = new DynamoDBStreamsClient(clientConfig(settings));
    const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: streamArn })))
      .StreamDescription!.Shards!;
    const { ShardIterator } = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shards[0]!.ShardId!,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const { Records } = await streams.send(new GetRecordsCommand({ ShardIterator }));
    expect(Records?.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY']);
    expect(Records?.[0]?.dynamodb?.NewImage?.SK?.S).toBe('RECEIPT#00003#COMPACTION_RUN#run-1');
  });
});

describe('Chroma vector store on a real Chroma server', () => {
  it('upserts by id (replay is harmless) and finds the nearest line', async () => {
    const store = new ChromaVectorStore(env.chroma.url);
    const texts = ['GRAND TOTAL 23.10', 'COSTCO WHOLESALE', 'UNLEADED 10.2 GAL'];
    const records = texts.map((t, i) => ({
      id: `IMAGE#x#RECEIPT#00001#LINE#0000${i}`,
      document: t,
      metadata: { line_id: i, text: t },
      embedding: embedText(t, 64),
    }));
    await store.upsert('lines', records);
    await store.upsert('lines', records);
    expect(await store.count('lines')).toBe(3);
    const [hit] = await store.query('lines', embedText('TOTAL', 64), 1);
    expect(hit?.document).toBe('GRAND TOTAL 23.10');
    expect(similarity(hit!.distance)).toBeGreaterThan(0.3);
    const got = await store.get('lines', { ids: [records[1]!.id], include: ['embeddings', 'metadatas'] });
    expect(got.embeddings?.[0]).toEqual(records[1]!.embedding);
  });
});

describe('embeddings endpoint through the openai SDK', () => {
  it('returns one vector of the configured dimension per input', async () => {
    const client = new OpenAI({ baseURL: env.embeddings.baseUrl, apiKey: env.embeddings.apiKey });
    const res = await client.embeddings.create({ model: env.embeddings.model, input: ['TOTAL', 'TAX'] });
    expect(res.data.map((d) => d.embedding.length)).toEqual([
      env.embeddings.dimensions,
      env.embeddings.dimensions,
    ]);
  });
});

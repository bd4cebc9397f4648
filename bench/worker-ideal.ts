import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { S3Store } from '../core/aws/s3-store.js';
import { newCompactionRun } from '../core/contracts/compaction-run.js';
import type { JobResult } from '../core/contracts/embedding-job.js';
import { COLLECTIONS, deltaKey } from '../core/contracts/ids.js';
import { OpenAIEmbedder } from '../core/embedding/openai-embedder.js';
import { Semaphore } from '../core/concurrency.js';

/**
 * The worker benchmark's ideal, run as its own process with the worker's environment (so it sits where the worker
 * sat: one process of its own, the endpoint and moto elsewhere): the batch's external work with no compute.
 *
 * - embedding: the batch's input texts straight to the endpoint, 2048 per request, the worker's request concurrency;
 * - I/O: per receipt the run lookup, the labels query and both NDJSON GETs (bodies drained), then PUTs of the batch's
 *   real delta bytes (fresh keys) and the conditional CompactionRun put, at most `readConcurrency` receipts reading
 *   and `writeConcurrency` writing at once;
 * - both at once: what a pipeline that overlapped them perfectly would do. On a shared machine the two slow each
 *   other down, so this, not the larger of the two measured apart, is the ideal.
 *
 * Usage: worker-ideal.ts PLAN.json → prints {embedMs, ioMs, bothMs} on stdout.
 */
export interface IdealPlan {
  inputs: string[];
  dimensions: number;
  maxInputsPerRequest: number;
  embedConcurrency: number;
  readConcurrency: number;
  writeConcurrency: number;
  artifactsBucket: string;
  vectorsBucket: string;
  table: string;
  jobs: { name: string; spec: { imageId: string; receiptId: number; linesKey: string; wordsKey: string } }[];
  results: JobResult[];
}

const plan = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as IdealPlan;
const aws = awsSettingsFromEnv();
const store = new S3Store(aws);
const ledger = new DynamoLedger(plan.table, aws);

const embedAll = () =>
  new OpenAIEmbedder({
    apiKey: process.env.OPENAI_API_KEY ?? '',
    baseURL: process.env.OPENAI_BASE_URL,
    dimensions: plan.dimensions,
    concurrency: plan.embedConcurrency,
    minInputsPerRequest: plan.maxInputsPerRequest,
  }).embed(plan.inputs);

// Untimed: the real delta bytes, so the PUTs carry what the worker uploaded.
const bodies = await Promise.all(
  plan.results.map(async (r) => {
    if (!r.linesDeltaKey || !r.wordsDeltaKey) throw new Error(`result without delta keys: ${r.runId}`);
    return {
      lines: await store.getBuffer(plan.vectorsBucket, r.linesDeltaKey),
      words: await store.getBuffer(plan.vectorsBucket, r.wordsDeltaKey),
    };
  }),
);

async function io(): Promise<void> {
  const read = new Semaphore(plan.readConcurrency);
  const write = new Semaphore(plan.writeConcurrency);
  const drain = async (s: NodeJS.ReadableStream) => {
    for await (const chunk of s) void chunk;
  };
  await Promise.all(
    plan.jobs.map(async (job, i) => {
      const { imageId, receiptId, linesKey, wordsKey } = job.spec;
      const runId = randomUUID();
      await read.run(() =>
        Promise.all([
          ledger.getRun(imageId, receiptId, runId),
          ledger.query(`IMAGE#${imageId}`, `RECEIPT#${String(receiptId).padStart(5, '0')}#LINE#`),
          store.getStream(plan.artifactsBucket, linesKey).then(drain),
          store.getStream(plan.artifactsBucket, wordsKey).then(drain),
        ]),
      );
      const body = bodies[i % bodies.length]!;
      await write.run(async () => {
        const deltas = Object.fromEntries(
          await Promise.all(
            COLLECTIONS.map(async (c) => {
              const key = deltaKey(c, runId);
              await store.put(plan.vectorsBucket, key, body[c], {
                contentType: 'application/vnd.apache.arrow.file',
                metadata: { run_id: runId, collection: c, sha256: '0'.repeat(64), job: job.name },
              });
              return [c, { key, sha256: '0'.repeat(64), vectors: 1 }] as const;
            }),
          ),
        ) as Parameters<typeof newCompactionRun>[0]['deltas'];
        await ledger.putRunIfAbsent(
          newCompactionRun({ runId, imageId, receiptId, jobName: job.name, deltas }),
        );
      });
    }),
  );
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return Math.round(performance.now() - t0);
}

const embedMs = await timed(embedAll);
const ioMs = await timed(io);
const bothMs = await timed(() => Promise.all([embedAll(), io()]));
process.stdout.write(JSON.stringify({ embedMs, ioMs, bothMs }) + '\n');

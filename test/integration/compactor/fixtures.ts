import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { AwsSettings } from '../../../core/aws/config.js';
import { DynamoLedger, ensureTable } from '../../../core/aws/dynamo-ledger.js';
import { S3Store } from '../../../core/aws/s3-store.js';
import { SqsQueue } from '../../../core/aws/sqs-queue.js';
import { newCompactionRun, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { deltaKey, lineVectorId, wordVectorId, type Collection } from '../../../core/contracts/ids.js';
import { encodeDelta } from '../../../core/delta/arrow-delta.js';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import { FencedLease } from '../../../core/lease/lease.js';
import type { Metadata, VectorRecord } from '../../../core/ports/vector-store.js';
import { openSegments } from '../../../core/segments/open.js';
import { copyVersion, readCurrent, versionDir } from '../../../core/snapshot/volume.js';
import { Compactor, type CompactorConfig } from '../../../compactor/compactor.js';
import { queueDepth as depthOf } from '../../harness/sqs-depth.js';
import type { TestEnv } from '../../harness/env.js';
import { DynamoStreamFeed, FileCheckpointStore } from '../../../core/aws/dynamo-stream-feed.js';
import type { CompactionReport } from '../../../stream/change-detection.js';
import { StreamProcessor } from '../../../stream/processor.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const DIM = 16;
export const silent = pino({ level: process.env.TEST_LOG ?? 'silent' });

export function awsOf(env: TestEnv): AwsSettings {
  return {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
}

export interface World {
  aws: AwsSettings;
  table: string;
  bucket: string;
  streamArn: string;
  urls: { lines: string; words: string; dlq: string };
  ledger: DynamoLedger;
  objects: S3Store;
  queues: Record<Collection, SqsQueue>;
  dlq: SqsQueue;
  dir: string;
  root: string;
  leaseFile: string;
}

/** Fresh table (with stream), bucket, queues and directories, all uniquely named. */
export async function makeWorld(env: TestEnv, name: string): Promise<World> {
  const aws = awsOf(env);
  const id = `${name}-${randomUUID().slice(0, 8)}`;
  const table = `t-${id}`;
  const bucket = `b-${id}`.toLowerCase();
  const ddb = new DynamoDBClient({ ...aws, endpoint: aws.endpoint });
  const { streamArn } = await ensureTable(ddb, table);
  const objects = new S3Store(aws);
  await objects.client.send(new CreateBucketCommand({ Bucket: bucket }));
  const sqs = new SQSClient({ region: aws.region, endpoint: aws.endpoint, credentials: aws.credentials });
  const mk = async (q: string) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: `${q}-${id}` }))).QueueUrl!;
  const urls = { lines: await mk('lines'), words: await mk('words'), dlq: await mk('dlq') };
  const dir = await mkdtemp(join(env.tmpDir, `${name}-`));
  return {
    aws,
    table,
    bucket,
    streamArn: streamArn!,
    urls,
    ledger: new DynamoLedger(table, aws),
    objects,
    queues: {
      lines: new SqsQueue(urls.lines, aws, urls.dlq),
      words: new SqsQueue(urls.words, aws, urls.dlq),
    },
    dlq: new SqsQueue(urls.dlq, aws),
    dir,
    root: join(dir, 'volume'),
    leaseFile: join(dir, 'lease.json'),
  };
}

/** Deterministic unit-ish vector. */
export function vec(seed: number, dim = DIM): Float32Array {
  const v = new Float32Array(dim);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < dim; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    v[i] = x / 4294967296 - 0.5;
  }
  return v;
}

export interface Receipt {
  imageId: string;
  receiptId: number;
  lines: VectorRecord[];
  words: VectorRecord[];
}

export function makeReceipt(
  seed: number,
  opts: { lines?: number; words?: number; dim?: number; imageId?: string; receiptId?: number } = {},
): Receipt {
  const imageId = opts.imageId ?? randomUUID();
  const receiptId = opts.receiptId ?? 1;
  const nl = opts.lines ?? 3;
  const nw = opts.words ?? 2;
  const lines: VectorRecord[] = [];
  const words: VectorRecord[] = [];
  for (let l = 0; l < nl; l++) {
    const meta: Metadata = {
      image_id: imageId,
      receipt_id: receiptId,
      line_id: l,
      text: `line ${seed}-${l}`,
      merchant_name: 'Worker Guess',
    };
    lines.push({
      id: lineVectorId(imageId, receiptId, l),
      document: `line ${seed}-${l}`,
      metadata: meta,
      embedding: vec(seed * 1000 + l, opts.dim),
    });
    for (let w = 0; w < nw; w++) {
      words.push({
        id: wordVectorId(imageId, receiptId, l, w),
        document: `w${seed}-${l}-${w}`,
        metadata: {
          image_id: imageId,
          receipt_id: receiptId,
          line_id: l,
          word_id: w,
          text: `w${seed}-${l}-${w}`,
        },
        embedding: vec(seed * 100_000 + l * 100 + w, opts.dim),
      });
    }
  }
  return { imageId, receiptId, lines, words };
}

/** What the worker does: both deltas to S3, then the CompactionRun row. */
export async function writeRun(
  w: World,
  r: Receipt,
  opts: {
    runId?: string;
    jobName?: string;
    dim?: number;
    tamper?: Partial<Record<Collection, (b: Buffer) => Buffer>>;
    /** Record the SHA-256 of the tampered bytes (a hostile writer, not corruption in transit). */
    rehash?: boolean;
    skipUpload?: Collection[];
  } = {},
): Promise<CompactionRunItem> {
  const runId = opts.runId ?? randomUUID();
  const deltas = {} as Record<Collection, { key: string; sha256: string; vectors: number }>;
  for (const c of ['lines', 'words'] as const) {
    const records = r[c];
    const enc = encodeDelta({ collection: c, runId, dimensions: opts.dim ?? DIM, model: 'test' }, records);
    const key = deltaKey(c, runId);
    const bytes = opts.tamper?.[c] ? opts.tamper[c](enc.bytes) : enc.bytes;
    if (!opts.skipUpload?.includes(c)) await w.objects.put(w.bucket, key, bytes);
    const sha256 = opts.rehash ? createHash('sha256').update(bytes).digest('hex') : enc.sha256;
    deltas[c] = { key, sha256, vectors: records.length };
  }
  const run = newCompactionRun({
    runId,
    imageId: r.imageId,
    receiptId: r.receiptId,
    deltas,
    ...(opts.jobName ? { jobName: opts.jobName } : {}),
  });
  await w.ledger.putRunIfAbsent(run);
  return run;
}

export function compactorFor(
  w: World,
  identity: string,
  config: Partial<CompactorConfig> = {},
  leaseMs = 3000,
): Compactor {
  return new Compactor({
    queues: w.queues,
    ledger: w.ledger,
    objects: w.objects,
    bucket: w.bucket,
    lease: new FencedLease(new FileLeaseBackend(w.leaseFile), { identity, durationMs: leaseMs, log: silent }),
    root: w.root,
    workRoot: join(w.dir, `work-${identity}`),
    log: silent,
    config: {
      waitSeconds: 1,
      batchWindowMs: 300,
      visibilitySeconds: 5,
      exitWhenIdleMs: 1500,
      s3EveryPublishes: 1,
      dimensions: DIM,
      ...config,
    },
  });
}

/** One lane of a compactor that holds the lease (fenced, working copy open); closed after `use`. */
export async function withLane<T>(
  w: World,
  c: Collection,
  config: Partial<CompactorConfig>,
  use: (lane: Compactor['lanes']['lines'], signal: AbortSignal, compactor: Compactor) => Promise<T>,
): Promise<T> {
  const compactor = compactorFor(w, `lane-${c}`, { batchWindowMs: 0, ...config });
  await compactor.deps.lease.acquire();
  await compactor.fence(undefined);
  const lane = compactor.lanes[c];
  await lane.init();
  try {
    return await use(lane, new AbortController().signal, compactor);
  } finally {
    await lane.close();
    await compactor.deps.lease.release();
  }
}

/** Environment for a child `embedctl compactor` / stream process against this world. */
export function childEnv(w: World, env: TestEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_REGION: env.aws.region,
    AWS_ENDPOINT_URL: env.aws.endpoint,
    AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
    LINES_QUEUE_URL: w.urls.lines,
    WORDS_QUEUE_URL: w.urls.words,
    COMPACTION_DLQ_URL: w.urls.dlq,
    VECTORS_BUCKET: w.bucket,
    LEDGER_TABLE: w.table,
    LEDGER_STREAM_ARN: w.streamArn,
    CHROMA_ROOT: w.root,
    LEASE_FILE: w.leaseFile,
    LEASE_DURATION_MS: '4000',
    COMPACTOR_WORK_DIR: join(w.dir, 'work'),
    METRICS_PORT: '0',
    EMBEDDING_DIMENSIONS: String(DIM),
    COMPACTOR_WAIT_SECONDS: '1',
    COMPACTOR_BATCH_WINDOW_MS: '300',
    COMPACTOR_VISIBILITY_SECONDS: '4',
    COMPACTOR_S3_EVERY_PUBLISHES: '1',
    COMPACTOR_EXIT_WHEN_IDLE_MS: '2500',
    LOG_LEVEL: process.env.TEST_LOG ?? 'warn',
    ...extra,
  };
}

/** Spawns a program with tsx; resolves with its exit code and signal. */
export function spawnTsx(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, script), ...args], {
    env,
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  child.stdout!.on('data', (d: Buffer) => {
    if (process.env.TEST_LOG) process.stdout.write(d);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, done };
}

export interface Dump {
  version: string | undefined;
  records: Map<string, { document: string; metadata: Metadata; embedding: number[] }>;
}

/** Everything in the live version of a collection: opened from a scratch copy (every segment), as readers do. */
export async function dumpLive(root: string, c: Collection, scratchParent: string): Promise<Dump> {
  const version = await readCurrent(root, c);
  const records = new Map<string, { document: string; metadata: Metadata; embedding: number[] }>();
  if (!version) return { version, records };
  const scratch = await mkdtemp(join(scratchParent, `dump-${c}-`));
  await rm(scratch, { recursive: true, force: true });
  await copyVersion(versionDir(root, c, version), scratch);
  try {
    return { version, records: await dumpDir(scratch, c) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Every live record of a copied version directory, read through the segmented reader (core/segments/open.ts). */
export async function dumpDir(dir: string, c: Collection): Promise<Dump['records']> {
  const segments = await openSegments(dir);
  const records = new Map<string, { document: string; metadata: Metadata; embedding: number[] }>();
  try {
    for (let offset = 0; ; offset += 1000) {
      const page = await segments.store.get(c, {
        include: ['embeddings', 'documents', 'metadatas'],
        limit: 1000,
        offset,
      });
      page.ids.forEach((id, i) =>
        records.set(id, {
          document: page.documents[i] ?? '',
          metadata: page.metadatas[i] ?? {},
          embedding: Array.from(page.embeddings![i]!),
        }),
      );
      if (page.ids.length < 1000) break;
    }
  } finally {
    await segments.close();
  }
  return records;
}

export function queueDepth(w: World, url: string): Promise<number> {
  return depthOf(
    new SQSClient({ region: w.aws.region, endpoint: w.aws.endpoint, credentials: w.aws.credentials }),
    url,
  );
}

export async function dlqMessages(w: World): Promise<{ body: string; reason: string }[]> {
  const sqs = new SQSClient({
    region: w.aws.region,
    endpoint: w.aws.endpoint,
    credentials: w.aws.credentials,
  });
  const out: { body: string; reason: string }[] = [];
  for (;;) {
    const res = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: w.urls.dlq,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
        VisibilityTimeout: 30,
      }),
    );
    if (!res.Messages?.length) break;
    for (const m of res.Messages)
      out.push({ body: m.Body ?? '', reason: m.MessageAttributes?.dlq_reason?.StringValue ?? '' });
  }
  return out;
}

export function expectedUnion(receipts: Receipt[], c: Collection): Map<string, VectorRecord> {
  const m = new Map<string, VectorRecord>();
  for (const r of receipts) for (const rec of r[c]) m.set(rec.id, rec);
  return m;
}

export { tmpdir };

/** Stream the pending runs, then one compactor pass that seals past 10 vectors and exits when idle (segment tests). */
export async function compactSealingAt10(w: World): Promise<void> {
  await pumpStream(w);
  await compactorFor(w, 'c1', { sealVectors: 10, exitWhenIdleMs: 500, waitSeconds: 0 }).run(
    new AbortController().signal,
  );
}

/** Runs the real stream processor (DynamoDB Streams → SQS) in-process for a few rounds. */
export async function pumpStream(w: World, reports: CompactionReport[] = [], rounds = 6): Promise<void> {
  const processor = new StreamProcessor({
    feed: new DynamoStreamFeed({
      streamArn: w.streamArn,
      checkpoints: new FileCheckpointStore(join(w.dir, 'stream-checkpoint.json')),
      settings: w.aws,
      idleMs: 50,
    }),
    queues: w.queues,
    sink: { report: async (r) => void reports.push(r) },
    log: silent,
  });
  for (let i = 0; i < rounds; i++) await processor.runOnce();
}

/** Pids of Chroma servers whose --path lies under `dir` (orphans after a crash must have been reaped). */
export async function serversUnder(dir: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
      const i = cmd.indexOf('--path');
      if (cmd.some((a) => a.endsWith('cli.mjs')) && i >= 0 && cmd[i + 1]!.startsWith(dir))
        out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { DynamoLedger, ensureTable } from '../../../core/aws/dynamo-ledger.js';
import { S3Store } from '../../../core/aws/s3-store.js';
import { startChromaServer } from '../../../core/chroma/server.js';
import { ChromaVectorStore } from '../../../core/chroma/store.js';
import type { JobResult } from '../../../core/contracts/embedding-job.js';
import { LocalEmbedder } from '../../../core/embedding/local-embedder.js';
import { createLogger } from '../../../core/log.js';
import { applyMerchant, buildReceiptItems } from '../../../core/receipt/embedding-inputs.js';
import type { putReceipt } from '../../../core/sample/index.js';
import { type GeneratedReceipt } from '../../../core/sample/index.js';
import {
  installVersion,
  newVersionId,
  readCurrentText,
  switchCurrent,
} from '../../../core/snapshot/volume.js';
import type { TestEnv } from '../../harness/env.js';
import type { FailureReason, Reporter, WorkItem } from '../../../worker/work-item.js';

export const DIMS = 64;
export const log = createLogger('worker-test', process.env.LOG_LEVEL ?? 'warn');

export async function awsFixtures(env: TestEnv, tag: string) {
  const settings = {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
  const suffix = `${tag}-${Date.now().toString(36)}`;
  const store = new S3Store(settings);
  const artifacts = `artifacts-${suffix}`;
  const vectors = `vectors-${suffix}`;
  for (const Bucket of [artifacts, vectors]) await store.client.send(new CreateBucketCommand({ Bucket }));
  const table = `ledger-${suffix}`;
  const ledger = new DynamoLedger(table, settings);
  await ensureTable(ledger.client, table);
  return { settings, store, ledger, artifacts, vectors, table };
}

/** Environment of an `embedctl worker` process against the test servers (tests, and the worker benchmark). */
export function workerProcessEnv(
  env: TestEnv,
  fx: { artifacts: string; vectors: string; table: string },
  o: { tmpDir: string; openaiBaseUrl: string; dimensions: number; chromaRoot: string },
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: o.tmpDir,
    LOG_LEVEL: 'warn',
    ARTIFACTS_BUCKET: fx.artifacts,
    VECTORS_BUCKET: fx.vectors,
    LEDGER_TABLE: fx.table,
    AWS_REGION: env.aws.region,
    AWS_ENDPOINT_URL: env.aws.endpoint,
    AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
    OPENAI_API_KEY: env.embeddings.apiKey,
    OPENAI_BASE_URL: o.openaiBaseUrl,
    EMBEDDING_DIMENSIONS: String(o.dimensions),
    CHROMA_ROOT: o.chromaRoot,
  };
}

export function workItem(
  msg: Awaited<ReturnType<typeof putReceipt>>,
  name?: string,
  attemptKey: string | number = 1,
): WorkItem {
  return {
    name: name ?? `ej-${msg.image_id.slice(0, 8)}-${msg.receipt_id}`,
    attemptKey,
    spec: {
      imageId: msg.image_id,
      receiptId: msg.receipt_id,
      artifactsBucket: msg.artifacts_bucket,
      linesKey: msg.lines_key,
      wordsKey: msg.words_key,
    },
  };
}

export interface Reported {
  name: string;
  outcome: 'Succeeded' | 'Failed';
  result?: JobResult;
  reason?: FailureReason;
  message?: string;
}

export function memoryReporter(): Reporter & { reports: Reported[] } {
  const reports: Reported[] = [];
  return {
    reports,
    succeeded: async (item, result) => void reports.push({ name: item.name, outcome: 'Succeeded', result }),
    failed: async (item, f) => void reports.push({ name: item.name, outcome: 'Failed', ...f }),
  };
}

/**
 * Publishes a `lines` snapshot on a fresh volume root: the given receipts' rows, embedded with the same lexical
 * model as the test endpoint, each with its merchant name in the metadata (as the compactor would hold them).
 */
export async function seedLinesSnapshot(
  receipts: GeneratedReceipt[],
  root?: string,
  dims = DIMS,
): Promise<{ root: string; version: string; dir: string }> {
  const volume = root ?? (await mkdtemp(join(process.env.TMPDIR ?? '/tmp', 'worker-volume-')));
  const build = await mkdtemp(join(process.env.TMPDIR ?? '/tmp', 'worker-seed-'));
  const server = await startChromaServer({ path: build });
  try {
    const store = new ChromaVectorStore(server.url);
    const embedder = new LocalEmbedder(dims);
    for (const r of receipts) {
      const items = buildReceiptItems({
        imageId: r.imageId,
        receiptId: r.receiptId,
        lines: r.lines,
        words: r.words,
      });
      applyMerchant(items, r.merchant.name);
      const vectors = await embedder.embed(items.lines.map((i) => i.input));
      await store.upsert(
        'lines',
        items.lines.map((it, i) => ({
          id: it.id,
          document: it.document,
          metadata: it.metadata,
          embedding: vectors[i]!,
        })),
      );
    }
  } finally {
    await server.stop();
  }
  const version = newVersionId();
  await installVersion(volume, 'lines', version, build);
  await switchCurrent(volume, 'lines', version, { expected: await readCurrentText(volume, 'lines') });
  return { root: volume, version, dir: build };
}

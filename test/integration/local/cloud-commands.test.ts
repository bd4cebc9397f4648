// `embedctl submit --cloud` and `embedctl status --cloud` against the real servers of the test environment: moto
// (SQS + S3) and the kube-apiserver with the EmbeddingJob CRD. Through the CLI in a child process, with only the
// environment variables the deployed programs read (core/config/env.ts).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { newEmbeddingJob } from '../../../core/contracts/embedding-job.js';
import { EmbeddingJobClient } from '../../../core/kube/embedding-jobs.js';
import { generateReceipts } from '../../../core/sample/index.js';
import { applyCrd, createNamespace, createQueues, kubeFor, sqsClient } from '../controller/helpers.js';

const env = inject('testEnv');
const ROOT = join(import.meta.dirname, '..', '..', '..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cloud-commands-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(
  args: string[],
  extraEnv: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('user commands in cloud mode', () => {
  it('submit --cloud uploads both files to S3, then sends one EMBED message per receipt to SQS', async () => {
    const { url } = await createQueues(env, 'submit');
    const bucket = `artifacts-${Math.random().toString(36).slice(2, 8)}`;
    const s3 = new S3Client({
      endpoint: env.aws.endpoint,
      region: env.aws.region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const receipts = generateReceipts(2, 3);
    receipts.forEach((r, i) => {
      mkdirSync(join(dir, 'in', `r${i}`), { recursive: true });
      writeFileSync(join(dir, 'in', `r${i}`, 'lines.ndjson'), r.linesNdjson);
      writeFileSync(join(dir, 'in', `r${i}`, 'words.ndjson'), r.wordsNdjson);
    });
    const res = await cli(['submit', join(dir, 'in'), '--cloud', '--json'], {
      EMBED_QUEUE_URL: url,
      ARTIFACTS_BUCKET: bucket,
      AWS_ENDPOINT_URL: env.aws.endpoint,
      AWS_REGION: env.aws.region,
      AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
    });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { submitted: { image_id: string; lines_key: string }[] };
    expect(out.submitted.map((m) => m.image_id).sort()).toEqual(receipts.map((r) => r.imageId).sort());

    const got = await sqsClient(env).send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const bodies = (got.Messages ?? []).map(
      (m) => JSON.parse(m.Body!) as { image_id: string; artifacts_bucket: string; lines_key: string },
    );
    expect(bodies).toHaveLength(2);
    for (const b of bodies) {
      expect(b.artifacts_bucket).toBe(bucket);
      const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: b.lines_key }));
      const text = await obj.Body!.transformToString();
      expect(text).toBe(receipts.find((r) => r.imageId === b.image_id)!.linesNdjson);
    }
  });

  it('status --cloud lists EmbeddingJobs like kubectl get ej, and exits 1 when one failed', async () => {
    const kube = await kubeFor(env);
    await applyCrd(kube);
    const ns = await createNamespace(kube, 'status');
    const client = new EmbeddingJobClient(kube);
    const [a, b] = generateReceipts(2, 4).map((r) => ({
      image_id: r.imageId,
      receipt_id: r.receiptId,
      artifacts_bucket: 'receipts',
      lines_key: 'l',
      words_key: 'w',
    }));
    const ejA = newEmbeddingJob(a!, ns);
    const ejB = newEmbeddingJob(b!, ns);
    await client.create(ejA);
    await client.create(ejB);
    await client.patchStatus(ns, ejA.metadata.name, {
      phase: 'Succeeded',
      attempts: 1,
      result: { runId: 'r', lines: 30, rows: 21, words: 80 },
      compaction: { lines: 'Completed', words: 'Completed' },
    });
    await client.patchStatus(ns, ejB.metadata.name, {
      phase: 'Failed',
      attempts: 3,
      message: 'lines.ndjson, row 7: bad',
    });

    const res = await cli(['status', '--cloud', '--namespace', ns, '--kubeconfig', env.kubeconfigPath], {});
    expect(res.code, res.stderr).toBe(1);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+PHASE\s+ATTEMPTS\s+LINES\s+WORDS\s+COMPACTED\s+AGE\s+MESSAGE$/);
    const row = (name: string) => lines.find((l) => l.startsWith(name))!.split(/\s{2,}/);
    expect(row(ejA.metadata.name).slice(0, 6)).toEqual([
      ejA.metadata.name,
      'Succeeded',
      '1',
      '21',
      '80',
      'True',
    ]);
    expect(lines.find((l) => l.startsWith(ejB.metadata.name))).toMatch(
      /Failed\s+3\s+.*lines\.ndjson, row 7: bad$/,
    );
  });
});

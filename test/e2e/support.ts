import { inject } from 'vitest';

import { S3Store } from '../../core/aws/s3-store.js';
import { SqsQueue } from '../../core/aws/sqs-queue.js';
import type { AwsSettings } from '../../core/aws/config.js';
import { putReceipt, type GeneratedReceipt } from '../../core/sample/index.js';
import { kubectlFor, type NodeClusterEnv } from '../harness/node/cluster.js';
import '../harness/node/global-setup.js';
import { waitFor as waitForValue } from '../support/wait.js';

/** `waitFor` (test/support/wait.ts), polling once a second by default: each probe here runs kubectl. */
export const waitFor = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 1_000,
): Promise<T> => waitForValue(what, probe, timeoutMs, intervalMs);

export function nodeEnv(): NodeClusterEnv {
  return inject('nodeEnv');
}

export function awsOf(env: NodeClusterEnv): AwsSettings {
  return {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
}

/** kubectl 1.35.4 against the node, as admin; throws with stderr on a non-zero exit. */
export function kubectl(env: NodeClusterEnv, args: string[], opts: { input?: string } = {}): string {
  return kubectlFor(env.binDir, env.kubeconfigPath, 60_000)(args, opts.input);
}

export function kubectlJson<T>(env: NodeClusterEnv, args: string[]): T {
  return JSON.parse(kubectl(env, [...args, '-o', 'json'])) as T;
}

/** Uploads the receipts' NDJSON and sends one EMBED message each, as the original system's producer did. */
export async function announce(env: NodeClusterEnv, receipts: GeneratedReceipt[]): Promise<void> {
  const aws = awsOf(env);
  const store = new S3Store(aws);
  const queue = new SqsQueue(env.config.queues.embed, aws);
  const bodies = await Promise.all(
    receipts.map(async (r) => JSON.stringify(await putReceipt(store, env.config.buckets.artifacts, r))),
  );
  await queue.send(bodies.map((body) => ({ body })));
}

export interface EmbeddingJobItem {
  metadata: { name: string };
  spec: { imageId: string; receiptId: number };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export function embeddingJobs(env: NodeClusterEnv): EmbeddingJobItem[] {
  return kubectlJson<{ items: EmbeddingJobItem[] }>(env, ['-n', env.namespace, 'get', 'embeddingjobs']).items;
}

export function compactorReplicas(env: NodeClusterEnv): { spec: number; ready: number } {
  const d = kubectlJson<{ spec: { replicas?: number }; status: { readyReplicas?: number } }>(env, [
    '-n',
    env.namespace,
    'get',
    'deploy/embedctl-compactor',
  ]);
  return { spec: d.spec.replicas ?? 0, ready: d.status.readyReplicas ?? 0 };
}

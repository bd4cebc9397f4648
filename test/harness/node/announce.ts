import { S3Store } from '../../../core/aws/s3-store.js';
import { SqsQueue } from '../../../core/aws/sqs-queue.js';
import type { AwsSettings } from '../../../core/aws/config.js';
import { putReceipt, type GeneratedReceipt } from '../../../core/sample/index.js';
import type { NodeClusterEnv } from './cluster.js';

/** The node's moto endpoint and static keys as the AWS adapters take them. */
export function awsOf(env: NodeClusterEnv): AwsSettings {
  return {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
}

/**
 * Uploads the receipts' NDJSON and sends one EMBED message each, as the original system's producer did. Resolves
 * with the epoch ms at which the first message was sent (the uploads come before it).
 */
export async function announce(env: NodeClusterEnv, receipts: GeneratedReceipt[]): Promise<number> {
  const aws = awsOf(env);
  const store = new S3Store(aws);
  const queue = new SqsQueue(env.config.queues.embed, aws);
  const bodies = await Promise.all(
    receipts.map(async (r) => JSON.stringify(await putReceipt(store, env.config.buckets.artifacts, r))),
  );
  const sentAt = Date.now();
  await queue.send(bodies.map((body) => ({ body })));
  return sentAt;
}

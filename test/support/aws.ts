import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import type { AwsSettings } from '../../core/aws/config.js';
import { clientConfig } from '../../core/aws/config.js';
import type { S3Store } from '../../core/aws/s3-store.js';
import type { TestEnv } from '../harness/env.js';

/** AWS settings pointing every client at the test environment's moto server. */
export function awsSettings(env: TestEnv): AwsSettings {
  return {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
}

/** Unique, valid resource names so test files sharing one moto never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function createBucket(store: S3Store, prefix = 'bucket'): Promise<string> {
  const bucket = uniqueName(prefix).toLowerCase();
  await store.client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** A queue with a dead-letter queue; SQS itself moves a message there after `maxReceiveCount` receives. */
export async function createQueueWithDlq(
  settings: AwsSettings,
  prefix: string,
  opts: { maxReceiveCount?: number; visibilitySeconds?: number } = {},
): Promise<{ url: string; dlqUrl: string }> {
  const sqs = new SQSClient(clientConfig(settings));
  const name = uniqueName(prefix);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(opts.visibilitySeconds ?? 30),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: dlqArn,
          maxReceiveCount: opts.maxReceiveCount ?? 5,
        }),
      },
    }),
  );
  sqs.destroy();
  return { url: q.QueueUrl!, dlqUrl: dlq.QueueUrl! };
}

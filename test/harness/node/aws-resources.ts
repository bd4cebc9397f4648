import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

import type { EnvironmentConfig } from '../../../cdk8s/config.js';
import type { AwsSettings } from '../../../core/aws/config.js';
import { clientConfig } from '../../../core/aws/config.js';
import { ensureTable } from '../../../core/aws/dynamo-ledger.js';

const queueName = (url: string): string => url.slice(url.lastIndexOf('/') + 1);

/**
 * What the charts expect to exist in AWS (on EKS: made by the account's infrastructure code): the five queues, the
 * EMBED and LINES/WORDS queues redriving to their dead-letter queues after `maxReceiveCount` receives, the two
 * buckets, and the ledger table with a NEW_AND_OLD_IMAGES stream.
 */
export async function createAwsResources(
  aws: AwsSettings,
  cfg: EnvironmentConfig,
  maxReceiveCount = 5,
): Promise<void> {
  const sqs = new SQSClient(clientConfig(aws));
  const s3 = new S3Client({ ...clientConfig(aws), forcePathStyle: true });
  const ddb = new DynamoDBClient(clientConfig(aws));
  try {
    const arnOf = async (url: string): Promise<string> => {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queueName(url) }));
      const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
      return attrs.Attributes?.QueueArn ?? '';
    };
    const redrive = (dlqArn: string): Record<string, string> => ({
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
    });
    const q = cfg.queues;
    const [embedDlq, compactionDlq] = await Promise.all([arnOf(q.embedDlq), arnOf(q.compactionDlq)]);
    await Promise.all([
      sqs.send(new CreateQueueCommand({ QueueName: queueName(q.embed), Attributes: redrive(embedDlq) })),
      sqs.send(new CreateQueueCommand({ QueueName: queueName(q.lines), Attributes: redrive(compactionDlq) })),
      sqs.send(new CreateQueueCommand({ QueueName: queueName(q.words), Attributes: redrive(compactionDlq) })),
      s3.send(new CreateBucketCommand({ Bucket: cfg.buckets.artifacts })),
      s3.send(new CreateBucketCommand({ Bucket: cfg.buckets.vectors })),
      ensureTable(ddb, cfg.ledger.table),
    ]);
  } finally {
    sqs.destroy();
    s3.destroy();
    ddb.destroy();
  }
}

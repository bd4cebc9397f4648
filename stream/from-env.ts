import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KubeConfig } from '@kubernetes/client-node';
import { ENV, STREAM_CHECKPOINT_CONFIGMAP } from '../cdk8s/env.js';
import { awsSettingsFromEnv, clientConfig, type AwsSettings } from '../core/aws/config.js';
import {
  DynamoStreamFeed,
  FileCheckpointStore,
  type CheckpointStore,
} from '../core/aws/dynamo-stream-feed.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { ConfigMapCheckpointStore } from './configmap-checkpoint.js';
import { KubeJobStatusSink, type JobStatusSink } from './job-status.js';
import { StreamProcessor } from './processor.js';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${name} is not set`, { name });
  return v;
}

export async function streamArnFor(settings: AwsSettings, table: string): Promise<string> {
  const ddb = new DynamoDBClient(clientConfig(settings));
  const desc = await ddb.send(new DescribeTableCommand({ TableName: table }));
  const arn = desc.Table?.LatestStreamArn;
  if (!arn) throw new ConfigError(`table ${table} has no stream`, { table });
  return arn;
}

/** Leadership of the process that writes the checkpoint: the ConfigMap store writes only while it leads. */
export interface LeaderFence {
  /** Aborted when leadership is lost (the manager's leader-runnable signal). */
  signal?: AbortSignal;
  isLeader?: () => boolean;
  /** Recorded in the checkpoint's writer annotation (default `POD_NAME`). */
  identity?: string;
}

/**
 * Builds the cloud stream processor from the environment (cdk8s/env.ts names). Checkpoints go to a ConfigMap when a
 * kubeconfig is available (in the controller), or to `STREAM_CHECKPOINT_FILE` when that is set. Job results are
 * recorded on EmbeddingJobs in NAMESPACE unless `sink` is given. `leader` fences the ConfigMap checkpoint.
 */
export async function streamProcessorFromEnv(
  opts: {
    env?: NodeJS.ProcessEnv;
    kubeConfig?: KubeConfig;
    log?: Logger;
    sink?: JobStatusSink | null;
    leader?: LeaderFence;
  } = {},
): Promise<StreamProcessor> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger('stream');
  const settings = awsSettingsFromEnv(env);
  const streamArn =
    env[ENV.LEDGER_STREAM_ARN] || (await streamArnFor(settings, required(env, ENV.LEDGER_TABLE)));
  const namespace = env[ENV.NAMESPACE] ?? 'default';
  let kc = opts.kubeConfig;
  let checkpoints: CheckpointStore;
  if (env.STREAM_CHECKPOINT_FILE) {
    checkpoints = new FileCheckpointStore(env.STREAM_CHECKPOINT_FILE);
  } else {
    if (!kc) {
      kc = new KubeConfig();
      kc.loadFromDefault();
    }
    const identity = opts.leader?.identity || env[ENV.POD_NAME];
    checkpoints = new ConfigMapCheckpointStore(
      kc,
      namespace,
      env.STREAM_CHECKPOINT_CONFIGMAP ?? STREAM_CHECKPOINT_CONFIGMAP,
      {
        log,
        ...(identity ? { identity } : {}),
        ...(opts.leader?.signal ? { signal: opts.leader.signal } : {}),
        ...(opts.leader?.isLeader ? { isLeader: opts.leader.isLeader } : {}),
      },
    );
  }
  let sink: JobStatusSink | undefined;
  if (opts.sink !== undefined) sink = opts.sink ?? undefined;
  else {
    if (!kc) {
      kc = new KubeConfig();
      kc.loadFromDefault();
    }
    sink = new KubeJobStatusSink(kc, namespace);
  }
  const dlq = env[ENV.COMPACTION_DLQ_URL];
  return new StreamProcessor({
    feed: new DynamoStreamFeed({ streamArn, checkpoints, settings, log }),
    queues: {
      lines: new SqsQueue(required(env, ENV.LINES_QUEUE_URL), settings, dlq),
      words: new SqsQueue(required(env, ENV.WORDS_QUEUE_URL), settings, dlq),
    },
    ...(sink ? { sink } : {}),
    log,
  });
}

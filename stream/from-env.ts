import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ENV, STREAM_CHECKPOINT_CONFIGMAP } from '../cdk8s/env.js';
import { awsSettingsFromEnv, clientConfig, type AwsSettings } from '../core/aws/config.js';
import {
  DynamoStreamFeed,
  FileCheckpointStore,
  type CheckpointStore,
} from '../core/aws/dynamo-stream-feed.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { ConfigError } from '../core/errors.js';
import { makeKubeClient } from '../core/kube/client.js';
import type { Kube } from '../core/kube/rest.js';
import { createLogger, type Logger } from '../core/log.js';
import { ConfigMapCheckpointStore } from './configmap-checkpoint.js';
import { KubeJobStatusSink, type JobStatusSink } from './job-status.js';
import { StreamProcessor } from './processor.js';
import { PendingRunSweeper } from './sweeper.js';

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
 * Builds the cloud stream processor from the environment (cdk8s/env.ts names). Checkpoints go to a ConfigMap (over
 * `kube`, the controller's client, else one from the default credentials), or to `STREAM_CHECKPOINT_FILE` when that
 * is set. Job results are recorded on EmbeddingJobs in NAMESPACE unless `sink` is given. `leader` fences the
 * ConfigMap checkpoint.
 */
export async function streamProcessorFromEnv(
  opts: {
    env?: NodeJS.ProcessEnv;
    kube?: Kube;
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
  let kube = opts.kube;
  const kubeClient = (): Kube => (kube ??= makeKubeClient());
  let checkpoints: CheckpointStore;
  if (env.STREAM_CHECKPOINT_FILE) {
    checkpoints = new FileCheckpointStore(env.STREAM_CHECKPOINT_FILE);
  } else {
    const identity = opts.leader?.identity || env[ENV.POD_NAME];
    checkpoints = new ConfigMapCheckpointStore(
      kubeClient(),
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
  else sink = new KubeJobStatusSink(kubeClient(), namespace);
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

function nonNegativeInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`${name} must be a non-negative integer, got ${raw}`, { name });
  return n;
}

/**
 * The pending-run sweeper from the environment: `STREAM_SWEEP_INTERVAL_MS` (600000; 0 = off → undefined),
 * `STREAM_SWEEP_AFTER_MS` (1800000), `STREAM_SWEEP_LIMIT` (500), plus `LEDGER_TABLE` (unset → off, with a
 * warning) and the queue URLs.
 */
export function pendingRunSweeperFromEnv(
  opts: { env?: NodeJS.ProcessEnv; log?: Logger } = {},
): PendingRunSweeper | undefined {
  const env = opts.env ?? process.env;
  const intervalMs = nonNegativeInt(env, 'STREAM_SWEEP_INTERVAL_MS', 600_000);
  if (intervalMs === 0) return undefined;
  const log = opts.log ?? createLogger('stream');
  const table = env[ENV.LEDGER_TABLE];
  if (!table) {
    // Only the stream ARN was given: the stream processor runs, the sweeper cannot (it reads the table).
    log.warn(`${ENV.LEDGER_TABLE} is not set: the pending-run sweeper is off`);
    return undefined;
  }
  const afterMs = nonNegativeInt(env, 'STREAM_SWEEP_AFTER_MS', 1_800_000);
  const limit = nonNegativeInt(env, 'STREAM_SWEEP_LIMIT', 500);
  const settings = awsSettingsFromEnv(env);
  const dlq = env[ENV.COMPACTION_DLQ_URL];
  return new PendingRunSweeper({
    ledger: new DynamoLedger(table, settings),
    queues: {
      lines: new SqsQueue(required(env, ENV.LINES_QUEUE_URL), settings, dlq),
      words: new SqsQueue(required(env, ENV.WORDS_QUEUE_URL), settings, dlq),
    },
    log,
    intervalMs,
    afterMs,
    limit: Math.max(1, limit),
    region: settings.region,
  });
}

import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsSettingsFromEnv, clientConfig, type AwsSettings } from '../core/aws/config.js';
import {
  DynamoStreamFeed,
  FileCheckpointStore,
  type CheckpointStore,
} from '../core/aws/dynamo-stream-feed.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { ENV, processEnv, type Env } from '../core/config/env.js';
import { parseStreamEnv, requireQueues } from '../core/config/stream.js';
import { ConfigError } from '../core/errors.js';
import { makeKubeClient } from '../core/kube/client.js';
import type { Kube } from '../core/kube/rest.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import { createLogger, type Logger } from '../core/log.js';
import { ConfigMapCheckpointStore } from './configmap-checkpoint.js';
import { KubeJobStatusSink, type JobStatusSink } from './job-status.js';
import type { StreamMetrics } from './metrics.js';
import { StreamProcessor } from './processor.js';
import { PendingRunSweeper } from './sweeper.js';

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
 * Builds the cloud stream processor from the environment (core/config/stream.ts). Checkpoints go to a ConfigMap (over
 * `kube`, the controller's client, else one from the default credentials), or to `STREAM_CHECKPOINT_FILE` when that is set. Job results are
 * recorded on EmbeddingJobs in NAMESPACE unless `sink` is given (or STREAM_NO_SINK=1). `leader` fences the ConfigMap
 * checkpoint.
 */
export async function streamProcessorFromEnv(
  opts: {
    env?: Env;
    kube?: Kube;
    log?: Logger;
    sink?: JobStatusSink | null;
    leader?: LeaderFence;
    metrics?: StreamMetrics;
    hooks?: CrashHooks;
  } = {},
): Promise<StreamProcessor> {
  const env = opts.env ?? processEnv();
  const config = parseStreamEnv(env);
  const log = opts.log ?? createLogger('stream');
  const settings = awsSettingsFromEnv(env);
  const queues = requireQueues(config);
  const streamArn = config.streamArn ?? (await streamArnFor(settings, ledgerTableOf(config.ledgerTable)));
  const { namespace } = config;
  let kube = opts.kube;
  const kubeClient = (): Kube => (kube ??= makeKubeClient());
  let checkpoints: CheckpointStore;
  if (config.checkpointFile) {
    checkpoints = new FileCheckpointStore(config.checkpointFile);
  } else {
    const identity = opts.leader?.identity || config.identity;
    checkpoints = new ConfigMapCheckpointStore(kubeClient(), namespace, config.checkpointConfigMap, {
      log,
      ...(identity ? { identity } : {}),
      ...(opts.leader?.signal ? { signal: opts.leader.signal } : {}),
      ...(opts.leader?.isLeader ? { isLeader: opts.leader.isLeader } : {}),
    });
  }
  let sink: JobStatusSink | undefined;
  if (opts.sink !== undefined) sink = opts.sink ?? undefined;
  else if (config.sink) sink = new KubeJobStatusSink(kubeClient(), namespace);
  return new StreamProcessor({
    feed: new DynamoStreamFeed({ streamArn, checkpoints, settings, log }),
    queues: {
      lines: new SqsQueue(queues.lines, settings, queues.dlq),
      words: new SqsQueue(queues.words, settings, queues.dlq),
    },
    ...(sink ? { sink } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    log,
  });
}

/** Without LEDGER_STREAM_ARN the stream is looked up on the table, which must then be named. */
function ledgerTableOf(table: string | undefined): string {
  if (!table)
    throw new ConfigError(`${ENV.LEDGER_TABLE} or ${ENV.LEDGER_STREAM_ARN} must be set`, {
      name: ENV.LEDGER_TABLE,
    });
  return table;
}

/**
 * The pending-run sweeper from the environment: `STREAM_SWEEP_INTERVAL_MS` (600000; 0 = off → undefined),
 * `STREAM_SWEEP_AFTER_MS` (1800000), `STREAM_SWEEP_LIMIT` (500), plus `LEDGER_TABLE` (unset → off, with a
 * warning) and the queue URLs.
 */
export function pendingRunSweeperFromEnv(
  opts: { env?: Env; log?: Logger; metrics?: StreamMetrics } = {},
): PendingRunSweeper | undefined {
  const env = opts.env ?? processEnv();
  const config = parseStreamEnv(env);
  const { intervalMs, afterMs, limit } = config.sweep;
  if (intervalMs === 0) return undefined;
  const log = opts.log ?? createLogger('stream');
  const table = config.ledgerTable;
  if (!table) {
    // Only the stream ARN was given: the stream processor runs, the sweeper cannot (it reads the table).
    log.warn(`${ENV.LEDGER_TABLE} is not set: the pending-run sweeper is off`);
    return undefined;
  }
  const settings = awsSettingsFromEnv(env);
  const queues = requireQueues(config);
  return new PendingRunSweeper({
    ledger: new DynamoLedger(table, settings),
    queues: {
      lines: new SqsQueue(queues.lines, settings, queues.dlq),
      words: new SqsQueue(queues.words, settings, queues.dlq),
    },
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    log,
    intervalMs,
    afterMs,
    limit: Math.max(1, limit),
    region: settings.region,
  });
}

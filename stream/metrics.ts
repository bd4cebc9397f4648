import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';

/**
 * Metrics of the stream processor and the compactor (prefix `embedctl_`), on prom-client's default registry so
 * they appear on whichever process's /metrics serves them (controller or compactor). Created once per process.
 */
function once<T>(name: string, make: () => T, registry: Registry = register): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export const streamMetrics = {
  records: once(
    'embedctl_stream_records_total',
    () =>
      new Counter({
        name: 'embedctl_stream_records_total',
        help: 'Change records read from the ledger stream',
        labelNames: ['event'],
      }),
  ),
  messages: once(
    'embedctl_stream_messages_sent_total',
    () =>
      new Counter({
        name: 'embedctl_stream_messages_sent_total',
        help: 'Compaction messages sent to the LINES/WORDS queues',
        labelNames: ['collection', 'entity_type'],
      }),
  ),
  sendRetries: once(
    'embedctl_stream_send_retries_total',
    () =>
      new Counter({
        name: 'embedctl_stream_send_retries_total',
        help: 'Batches whose send was retried (never dropped)',
      }),
  ),
  reports: once(
    'embedctl_stream_compaction_reports_total',
    () =>
      new Counter({
        name: 'embedctl_stream_compaction_reports_total',
        help: 'Compaction results recorded on EmbeddingJobs',
        labelNames: ['state'],
      }),
  ),
  sweptRuns: once(
    'embedctl_stream_swept_runs_total',
    () =>
      new Counter({
        name: 'embedctl_stream_swept_runs_total',
        help: 'PENDING CompactionRuns re-announced by the sweeper (their stream record was missed), per collection',
        labelNames: ['collection'],
      }),
  ),
  lastCommit: once(
    'embedctl_stream_last_commit_timestamp_seconds',
    () =>
      new Gauge({
        name: 'embedctl_stream_last_commit_timestamp_seconds',
        help: 'When the stream checkpoint last advanced',
      }),
  ),
};

export const compactorMetrics = {
  merged: once(
    'embedctl_compactor_merged_vectors_total',
    () =>
      new Counter({
        name: 'embedctl_compactor_merged_vectors_total',
        help: 'Delta vectors merged into a published version, by how (added, replaced, unchanged)',
        labelNames: ['collection', 'how'],
      }),
  ),
  mergeSeconds: once(
    'embedctl_compactor_merge_seconds',
    () =>
      new Histogram({
        name: 'embedctl_compactor_merge_seconds',
        help: 'Time to apply one batch to the working copy',
        labelNames: ['collection'],
        buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      }),
  ),
  publishSeconds: once(
    'embedctl_compactor_publish_seconds',
    () =>
      new Histogram({
        name: 'embedctl_compactor_publish_seconds',
        help: 'Stop, copy, validate and switch of one new version',
        labelNames: ['collection'],
        buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60],
      }),
  ),
  versions: once(
    'embedctl_compactor_versions',
    () =>
      new Gauge({
        name: 'embedctl_compactor_versions',
        help: 'Versions kept on the volume',
        labelNames: ['collection'],
      }),
  ),
  publishes: once(
    'embedctl_compactor_publishes_total',
    () =>
      new Counter({
        name: 'embedctl_compactor_publishes_total',
        help: 'Published versions',
        labelNames: ['collection'],
      }),
  ),
  lag: once(
    'embedctl_compaction_lag_seconds',
    () =>
      new Histogram({
        name: 'embedctl_compaction_lag_seconds',
        help: 'CompactionRun creation to COMPLETED, per collection',
        labelNames: ['collection'],
        buckets: [0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900],
      }),
  ),
  runs: once(
    'embedctl_compactor_runs_total',
    () =>
      new Counter({
        name: 'embedctl_compactor_runs_total',
        help: 'Runs finished',
        labelNames: ['collection', 'state'],
      }),
  ),
  dlq: once(
    'embedctl_dlq_messages_total',
    () =>
      new Counter({
        name: 'embedctl_dlq_messages_total',
        help: 'Messages moved to the dead-letter queue',
        labelNames: ['queue', 'reason'],
      }),
  ),
  s3Uploads: once(
    'embedctl_compactor_s3_snapshots_total',
    () =>
      new Counter({
        name: 'embedctl_compactor_s3_snapshots_total',
        help: 'Snapshots uploaded to S3',
        labelNames: ['collection'],
      }),
  ),
};

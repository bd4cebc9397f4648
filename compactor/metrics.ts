import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Metrics of the compactor (prefix `embedctl_`), on the registry its /metrics serves. Without one they go to a
 * private registry (tests, local mode, which reads them back for its summary).
 */
export class CompactorMetrics {
  readonly merged: Counter<'collection' | 'how'>;
  readonly mergeSeconds: Histogram<'collection'>;
  readonly publishSeconds: Histogram<'collection'>;
  readonly versions: Gauge<'collection'>;
  readonly publishes: Counter<'collection'>;
  readonly lag: Histogram<'collection'>;
  readonly runs: Counter<'collection' | 'state'>;
  readonly dlq: Counter<'queue' | 'reason'>;
  readonly s3Uploads: Counter<'collection'>;
  readonly s3UnmirroredSince: Gauge<'collection'>;

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.merged = new Counter({
      name: 'embedctl_compactor_merged_vectors_total',
      help: 'Delta vectors merged into a published version, by how (added, replaced, unchanged)',
      labelNames: ['collection', 'how'],
      registers,
    });
    this.mergeSeconds = new Histogram({
      name: 'embedctl_compactor_merge_seconds',
      help: 'Time to apply one batch to the working copy',
      labelNames: ['collection'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    });
    this.publishSeconds = new Histogram({
      name: 'embedctl_compactor_publish_seconds',
      help: 'Stop, copy, validate and switch of one new version',
      labelNames: ['collection'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.versions = new Gauge({
      name: 'embedctl_compactor_versions',
      help: 'Versions kept on the volume',
      labelNames: ['collection'],
      registers,
    });
    this.publishes = new Counter({
      name: 'embedctl_compactor_publishes_total',
      help: 'Published versions',
      labelNames: ['collection'],
      registers,
    });
    this.lag = new Histogram({
      name: 'embedctl_compaction_lag_seconds',
      help: 'CompactionRun creation to COMPLETED, per collection',
      labelNames: ['collection'],
      buckets: [0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.runs = new Counter({
      name: 'embedctl_compactor_runs_total',
      help: 'Runs finished',
      labelNames: ['collection', 'state'],
      registers,
    });
    this.dlq = new Counter({
      name: 'embedctl_dlq_messages_total',
      help: 'Messages moved to the dead-letter queue',
      labelNames: ['queue', 'reason'],
      registers,
    });
    this.s3Uploads = new Counter({
      name: 'embedctl_compactor_s3_snapshots_total',
      help: 'Snapshots uploaded to S3',
      labelNames: ['collection'],
      registers,
    });
    // A time, not an age: a stuck or failing mirror keeps it, so the S3-mirror-stale alert fires from any scrape.
    this.s3UnmirroredSince = new Gauge({
      name: 'embedctl_compactor_s3_unmirrored_since_timestamp_seconds',
      help: 'Unix time of the oldest publish not yet uploaded to S3; 0 while S3 holds the live version',
      labelNames: ['collection'],
      registers,
    });
  }
}

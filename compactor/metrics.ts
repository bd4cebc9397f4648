import { type Counter, type Gauge, type Histogram, Registry } from 'prom-client';
import { metricsOn } from '../core/metrics.js';

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

  constructor(registry: Registry = new Registry()) {
    const m = metricsOn(registry);
    this.merged = m.counter(
      'embedctl_compactor_merged_vectors_total',
      'Delta vectors merged into a published version, by how (added, replaced, unchanged)',
      ['collection', 'how'],
    );
    this.mergeSeconds = m.histogram(
      'embedctl_compactor_merge_seconds',
      'Time to apply one batch to the working copy',
      ['collection'],
      [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    );
    this.publishSeconds = m.histogram(
      'embedctl_compactor_publish_seconds',
      'Stop, copy, validate and switch of one new version',
      ['collection'],
      [0.1, 0.5, 1, 2, 5, 10, 30, 60],
    );
    this.versions = m.gauge('embedctl_compactor_versions', 'Versions kept on the volume', ['collection']);
    this.publishes = m.counter('embedctl_compactor_publishes_total', 'Published versions', ['collection']);
    this.lag = m.histogram(
      'embedctl_compaction_lag_seconds',
      'CompactionRun creation to COMPLETED, per collection',
      ['collection'],
      [0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900],
    );
    this.runs = m.counter('embedctl_compactor_runs_total', 'Runs finished', ['collection', 'state']);
    this.dlq = m.counter('embedctl_dlq_messages_total', 'Messages moved to the dead-letter queue', [
      'queue',
      'reason',
    ]);
    this.s3Uploads = m.counter('embedctl_compactor_s3_snapshots_total', 'Snapshots uploaded to S3', [
      'collection',
    ]);
  }
}

import { Registry } from 'prom-client';
import type { Collection } from '../core/contracts/ids.js';
import { metricsClass } from '../core/metrics.js';
import { DLQ_REASON_KINDS } from './give-up.js';

/**
 * Metrics of the compactor (prefix `embedctl_`), on the registry its /metrics serves. Without one they go to a
 * private registry (tests, local mode, which reads them back for its summary).
 */
export class CompactorMetrics extends metricsClass((m) => ({
  merged: m.counter(
    'embedctl_compactor_merged_vectors_total',
    'Delta vectors merged into a published version, by how (added, replaced, unchanged)',
    ['collection', 'how'],
  ),
  mergeSeconds: m.histogram(
    'embedctl_compactor_merge_seconds',
    'Time to apply one batch to the working copy',
    ['collection'],
    [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
  ),
  publishSeconds: m.histogram(
    'embedctl_compactor_publish_seconds',
    'Stop, copy, validate and switch of one new version',
    ['collection'],
    [0.1, 0.5, 1, 2, 5, 10, 30, 60],
  ),
  versions: m.gauge('embedctl_compactor_versions', 'Versions kept on the volume', ['collection']),
  publishes: m.counter('embedctl_compactor_publishes_total', 'Published versions', ['collection']),
  lag: m.histogram(
    'embedctl_compaction_lag_seconds',
    'CompactionRun creation to COMPLETED, per collection',
    ['collection'],
    [0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900],
  ),
  runs: m.counter('embedctl_compactor_runs_total', 'Runs finished', ['collection', 'state']),
  dlq: m.counter('embedctl_dlq_messages_total', 'Messages moved to the dead-letter queue', [
    'queue',
    'reason',
  ]),
  s3Uploads: m.counter('embedctl_compactor_s3_snapshots_total', 'Snapshots uploaded to S3', ['collection']),
  // A time, not an age: a stuck or failing mirror keeps it, so the S3-mirror-stale alert fires from any scrape.
  s3UnmirroredSince: m.gauge(
    'embedctl_compactor_s3_unmirrored_since_timestamp_seconds',
    'Unix time of the oldest publish not yet uploaded to S3; 0 while S3 holds the live version',
    ['collection'],
  ),
})) {
  constructor(registry: Registry = new Registry()) {
    super(registry);
  }

  /**
   * A lane's counters at 0 from its start (their label values are known in advance): `increase()` then sees the
   * first event, and a panel reads 0 rather than nothing for a compactor that never uploaded while it was scraped
   * (with few publishes the S3 upload happens at shutdown, after the last scrape).
   */
  initCollection(collection: Collection): void {
    for (const how of ['added', 'replaced', 'unchanged']) this.merged.inc({ collection, how }, 0);
    for (const state of ['COMPLETED', 'FAILED']) this.runs.inc({ collection, state }, 0);
    for (const reason of DLQ_REASON_KINDS) this.dlq.inc({ queue: collection, reason }, 0);
    this.publishes.inc({ collection }, 0);
    this.s3Uploads.inc({ collection }, 0);
  }
}

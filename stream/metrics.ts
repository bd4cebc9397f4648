import { type Counter, type Gauge, Registry } from 'prom-client';
import { metricsOn } from '../core/metrics.js';

/**
 * Metrics of the stream processor and its pending-run sweeper (prefix `embedctl_stream_`), on the registry the host
 * process serves (the controller's). Without one they go to a private registry nobody scrapes.
 */
export class StreamMetrics {
  readonly records: Counter<'event'>;
  readonly messages: Counter<'collection' | 'entity_type'>;
  readonly sendRetries: Counter;
  readonly reports: Counter<'state'>;
  readonly sweptRuns: Counter<'collection'>;
  readonly lastCommit: Gauge;

  constructor(registry: Registry = new Registry()) {
    const m = metricsOn(registry);
    this.records = m.counter('embedctl_stream_records_total', 'Change records read from the ledger stream', [
      'event',
    ]);
    this.messages = m.counter(
      'embedctl_stream_messages_sent_total',
      'Compaction messages sent to the LINES/WORDS queues',
      ['collection', 'entity_type'],
    );
    this.sendRetries = m.counter(
      'embedctl_stream_send_retries_total',
      'Batches whose send was retried (never dropped)',
    );
    this.reports = m.counter(
      'embedctl_stream_compaction_reports_total',
      'Compaction results recorded on EmbeddingJobs',
      ['state'],
    );
    this.sweptRuns = m.counter(
      'embedctl_stream_swept_runs_total',
      'PENDING CompactionRuns re-announced by the sweeper (their stream record was missed), per collection',
      ['collection'],
    );
    this.lastCommit = m.gauge(
      'embedctl_stream_last_commit_timestamp_seconds',
      'When the stream checkpoint last advanced',
    );
  }
}

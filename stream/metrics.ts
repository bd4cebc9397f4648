import { Registry } from 'prom-client';
import { metricsClass } from '../core/metrics.js';

/**
 * Metrics of the stream processor and its pending-run sweeper (prefix `embedctl_stream_`), on the registry the host
 * process serves (the controller's). Without one they go to a private registry nobody scrapes.
 */
export class StreamMetrics extends metricsClass((m) => ({
  records: m.counter('embedctl_stream_records_total', 'Change records read from the ledger stream', [
    'event',
  ]),
  messages: m.counter(
    'embedctl_stream_messages_sent_total',
    'Compaction messages sent to the LINES/WORDS queues',
    ['collection', 'entity_type'],
  ),
  sendRetries: m.counter(
    'embedctl_stream_send_retries_total',
    'Batches whose send was retried (never dropped)',
  ),
  reports: m.counter(
    'embedctl_stream_compaction_reports_total',
    'Compaction results recorded on EmbeddingJobs',
    ['state'],
  ),
  sweptRuns: m.counter(
    'embedctl_stream_swept_runs_total',
    'PENDING CompactionRuns re-announced by the sweeper (their stream record was missed), per collection',
    ['collection'],
  ),
  lastCommit: m.gauge(
    'embedctl_stream_last_commit_timestamp_seconds',
    'When the stream checkpoint last advanced',
  ),
})) {
  constructor(registry: Registry = new Registry()) {
    super(registry);
  }
}

import { Counter, Gauge, Registry } from 'prom-client';

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
    const registers = [registry];
    this.records = new Counter({
      name: 'embedctl_stream_records_total',
      help: 'Change records read from the ledger stream',
      labelNames: ['event'],
      registers,
    });
    this.messages = new Counter({
      name: 'embedctl_stream_messages_sent_total',
      help: 'Compaction messages sent to the LINES/WORDS queues',
      labelNames: ['collection', 'entity_type'],
      registers,
    });
    this.sendRetries = new Counter({
      name: 'embedctl_stream_send_retries_total',
      help: 'Batches whose send was retried (never dropped)',
      registers,
    });
    this.reports = new Counter({
      name: 'embedctl_stream_compaction_reports_total',
      help: 'Compaction results recorded on EmbeddingJobs',
      labelNames: ['state'],
      registers,
    });
    this.sweptRuns = new Counter({
      name: 'embedctl_stream_swept_runs_total',
      help: 'PENDING CompactionRuns re-announced by the sweeper (their stream record was missed), per collection',
      labelNames: ['collection'],
      registers,
    });
    this.lastCommit = new Gauge({
      name: 'embedctl_stream_last_commit_timestamp_seconds',
      help: 'When the stream checkpoint last advanced',
      registers,
    });
  }
}

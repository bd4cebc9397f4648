import { type Counter, type Gauge, type Registry } from 'prom-client';
import { metricsOn } from '../core/metrics.js';

/** Domain metrics of the controller (machinery metrics are in core/kube/metrics.ts). */
export class ControllerMetrics {
  readonly messages: Counter<'result'>;
  readonly ingestPaused: Gauge;
  readonly outstanding: Gauge;
  readonly activePods: Gauge;
  readonly jobsCreated: Counter;
  readonly transitions: Counter<'phase' | 'reason'>;

  constructor(registry: Registry) {
    const m = metricsOn(registry);
    this.messages = m.counter(
      'embedctl_ingest_messages_total',
      'EMBED messages by result: received, created, duplicate, dead_lettered, failed.',
      ['result'],
    );
    this.ingestPaused = m.gauge('embedctl_ingest_paused', '1 while ingest is paused by backpressure.');
    this.outstanding = m.gauge(
      'embedctl_outstanding_embeddingjobs',
      'EmbeddingJobs not yet Succeeded or Failed.',
    );
    this.activePods = m.gauge(
      'embedctl_worker_pods_active',
      'Unfinished worker Jobs (one pod each, Pending pods included).',
    );
    this.jobsCreated = m.counter('embedctl_worker_jobs_created_total', 'Worker Jobs created.');
    this.transitions = m.counter(
      'embedctl_embeddingjob_transitions_total',
      'EmbeddingJob phase transitions written by the status reconciler.',
      ['phase', 'reason'],
    );
  }
}

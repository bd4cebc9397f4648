import { Counter, Gauge, type Registry } from 'prom-client';

/** Domain metrics of the controller (machinery metrics are in core/kube/metrics.ts). */
export class ControllerMetrics {
  readonly messages: Counter<'result'>;
  readonly ingestPaused: Gauge;
  readonly outstanding: Gauge;
  readonly activePods: Gauge;
  readonly jobsCreated: Counter;
  readonly transitions: Counter<'phase' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.messages = new Counter({
      name: 'embedctl_ingest_messages_total',
      help: 'EMBED messages by result: received, created, duplicate, dead_lettered, failed.',
      labelNames: ['result'],
      registers,
    });
    this.ingestPaused = new Gauge({
      name: 'embedctl_ingest_paused',
      help: '1 while ingest is paused by backpressure.',
      registers,
    });
    this.outstanding = new Gauge({
      name: 'embedctl_outstanding_embeddingjobs',
      help: 'EmbeddingJobs not yet Succeeded or Failed.',
      registers,
    });
    this.activePods = new Gauge({
      name: 'embedctl_worker_pods_active',
      help: 'Unfinished worker Jobs (one pod each, Pending pods included).',
      registers,
    });
    this.jobsCreated = new Counter({
      name: 'embedctl_worker_jobs_created_total',
      help: 'Worker Jobs created.',
      registers,
    });
    this.transitions = new Counter({
      name: 'embedctl_embeddingjob_transitions_total',
      help: 'EmbeddingJob phase transitions written by the status reconciler.',
      labelNames: ['phase', 'reason'],
      registers,
    });
  }
}

import { metricsClass } from '../core/metrics.js';

/** Domain metrics of the controller (machinery metrics are in core/kube/metrics.ts). */
export class ControllerMetrics extends metricsClass((m) => ({
  messages: m.counter(
    'embedctl_ingest_messages_total',
    'EMBED messages by result: received, created, duplicate, dead_lettered, failed.',
    ['result'],
  ),
  ingestPaused: m.gauge('embedctl_ingest_paused', '1 while ingest is paused by backpressure.'),
  outstanding: m.gauge('embedctl_outstanding_embeddingjobs', 'EmbeddingJobs not yet Succeeded or Failed.'),
  activePods: m.gauge(
    'embedctl_worker_pods_active',
    'Unfinished worker Jobs (one pod each, Pending pods included).',
  ),
  jobsCreated: m.counter('embedctl_worker_jobs_created_total', 'Worker Jobs created.'),
  transitions: m.counter(
    'embedctl_embeddingjob_transitions_total',
    'EmbeddingJob phase transitions written by the status reconciler.',
    ['phase', 'reason'],
  ),
})) {}

import type { Registry } from 'prom-client';
import { metricsClass } from '../metrics.js';
import type { QueueObserver } from './work-queue.js';

/**
 * Machinery metrics with controller-runtime / client-go names, so existing dashboards work
 * (docs/adr/0007-hand-written-kube-client.md). One set per Registry; created by the manager and shared by its
 * controllers and informers.
 */
export class KubeMetrics extends metricsClass((m) => {
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    reconcileTotal: m.counter(
      'controller_runtime_reconcile_total',
      'Total reconciliations per controller and result (success, error, requeue_after).',
      ['controller', 'result'],
    ),
    reconcileErrors: m.counter(
      'controller_runtime_reconcile_errors_total',
      'Total reconciliation errors per controller.',
      ['controller'],
    ),
    terminalErrors: m.counter(
      'controller_runtime_terminal_reconcile_errors_total',
      'Reconciliation errors that are not retried.',
      ['controller'],
    ),
    reconcileTime: m.histogram(
      'controller_runtime_reconcile_time_seconds',
      'Length of time per reconciliation per controller.',
      ['controller'],
      buckets,
    ),
    activeWorkers: m.gauge(
      'controller_runtime_active_workers',
      'Number of currently used workers per controller.',
      ['controller'],
    ),
    queueDepth: m.gauge('workqueue_depth', 'Current depth of workqueue.', ['name']),
    queueAdds: m.counter('workqueue_adds_total', 'Total adds handled by workqueue.', ['name']),
    queueRetries: m.counter('workqueue_retries_total', 'Total retries handled by workqueue.', ['name']),
    queueDuration: m.histogram(
      'workqueue_queue_duration_seconds',
      'How long in seconds an item stays in workqueue before being requested.',
      ['name'],
      buckets,
    ),
    workDuration: m.histogram(
      'workqueue_work_duration_seconds',
      'How long in seconds processing an item from workqueue takes.',
      ['name'],
      buckets,
    ),
    leaderStatus: m.gauge('leader_election_master_status', '1 while this replica holds the Lease.', ['name']),
    relists: m.counter(
      'embedctl_informer_relists_total',
      'Informer relists by resource and reason (initial, gone, silence, error).',
      ['resource', 'reason'],
    ),
  };
}) {
  constructor(readonly registry: Registry) {
    super(registry);
  }

  /**
   * A controller's series exist from its start, at 0, as controller-runtime's `initMetrics` does: an error panel or
   * `rate()` then reads 0 rather than nothing until the first error.
   */
  initController(controller: string): void {
    for (const result of ['success', 'error', 'requeue_after'])
      this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc({ controller }, 0);
    this.terminalErrors.inc({ controller }, 0);
    this.activeWorkers.set({ controller }, 0);
  }

  queueObserver(name: string): QueueObserver {
    return {
      depth: (n) => this.queueDepth.set({ name }, n),
      added: () => this.queueAdds.inc({ name }),
      retried: () => this.queueRetries.inc({ name }),
      queued: (s) => this.queueDuration.observe({ name }, s),
      worked: (s) => this.workDuration.observe({ name }, s),
    };
  }
}

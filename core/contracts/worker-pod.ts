/**
 * Labels of the worker Jobs and pods the controller creates (controller/worker-job.ts); the charts' NetworkPolicy
 * selects worker pods by them (cdk8s/charts/network.ts), and the controller's informers watch by them.
 */
export const WORKER_LABELS = {
  'app.kubernetes.io/name': 'embedctl',
  'app.kubernetes.io/component': 'embedding-worker',
  'app.kubernetes.io/managed-by': 'embedctl-controller',
} as const;

export const WORKER_SELECTOR = Object.entries(WORKER_LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

/**
 * The one label scheme (Kubernetes recommended labels) of everything this project creates: the objects the charts
 * install (cdk8s/common.ts) and the worker Jobs, EmbeddingJobs and checkpoint the controller creates at run time.
 * `managed-by` names who writes the object, so it is the only value that differs between the two.
 */
export const APP_NAME = 'receipt-embeddings';

export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
} as const;

export const MANAGED_BY = {
  /** Installed from the synthesized charts. */
  charts: 'cdk8s',
  /** Created by the controller process at run time. */
  controller: 'embedctl-controller',
} as const;

/** Worker Jobs and their pods: what the controller's informers and the workers' NetworkPolicy select. */
export const WORKER_LABELS = {
  [LABEL.name]: APP_NAME,
  [LABEL.component]: 'worker',
  [LABEL.managedBy]: MANAGED_BY.controller,
} as const;

export const WORKER_SELECTOR = Object.entries(WORKER_LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

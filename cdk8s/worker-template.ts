/**
 * The worker pod template the controller turns into batch/v1 Jobs. It is data (the controller builds the Jobs at
 * run time), so it is plain core/v1 JSON, published in the worker-settings ConfigMap under `podTemplate`.
 */
import type { EnvironmentConfig } from './config.js';
import {
  CONTAINER_SECURITY_CONTEXT,
  NAMES,
  POD_SECURITY_CONTEXT,
  programEnv,
  resourceRequirements,
  selectorLabels,
  labels,
} from './common.js';
import { CHROMA_MOUNT_PATH, WORKER_CONFIG_KEYS } from '../core/config/env.js';

export const WORKER_CONTAINER_NAME = 'worker';

export function workerPodTemplate(cfg: EnvironmentConfig): Record<string, unknown> {
  return {
    metadata: { labels: { ...labels(cfg, 'worker'), ...selectorLabels(cfg, 'worker') } },
    spec: {
      serviceAccountName: NAMES.worker,
      // The worker patches its EmbeddingJobs' status (controller/README.md), so it needs its token.
      automountServiceAccountToken: true,
      restartPolicy: 'Never',
      enableServiceLinks: false,
      securityContext: POD_SECURITY_CONTEXT,
      containers: [
        {
          name: WORKER_CONTAINER_NAME,
          image: cfg.image,
          imagePullPolicy: cfg.imagePullPolicy,
          args: ['worker'],
          env: programEnv(cfg, 'worker'),
          ports: [{ name: 'metrics', containerPort: cfg.metricsPort, protocol: 'TCP' }],
          resources: resourceRequirements(cfg.worker.resources),
          securityContext: CONTAINER_SECURITY_CONTEXT,
          volumeMounts: [
            { name: 'tmp', mountPath: '/tmp' },
            { name: 'chroma', mountPath: CHROMA_MOUNT_PATH, readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'tmp', emptyDir: { sizeLimit: cfg.worker.scratchSize } },
        { name: 'chroma', persistentVolumeClaim: { claimName: NAMES.pvc, readOnly: true } },
      ],
    },
  };
}

/** ConfigMap data (all strings) for the worker settings the controller reads; keys from WORKER_CONFIG_KEYS. */
export function workerConfigData(cfg: EnvironmentConfig): Record<string, string> {
  const K = WORKER_CONFIG_KEYS;
  const w = cfg.worker;
  return {
    [K.image]: cfg.image,
    [K.imagePullPolicy]: cfg.imagePullPolicy,
    [K.serviceAccountName]: NAMES.worker,
    [K.resources]: JSON.stringify(resourceRequirements(w.resources)),
    [K.activeDeadlineSeconds]: String(w.activeDeadlineSeconds),
    [K.backoffLimit]: String(w.backoffLimit),
    [K.ttlSecondsAfterFinished]: String(w.ttlSecondsAfterFinished),
    [K.pvcName]: NAMES.pvc,
    [K.chromaMountPath]: CHROMA_MOUNT_PATH,
    [K.batchSize]: String(w.batchSize),
    [K.batchWindowSeconds]: String(w.batchWindowSeconds),
    [K.maxActivePods]: String(w.maxActivePods),
    [K.podSecurityContext]: JSON.stringify(POD_SECURITY_CONTEXT),
    [K.containerSecurityContext]: JSON.stringify(CONTAINER_SECURITY_CONTEXT),
    [K.env]: JSON.stringify(programEnv(cfg, 'worker')),
    [K.podTemplate]: JSON.stringify(workerPodTemplate(cfg), null, 2),
  };
}

/**
 * The worker-settings ConfigMap: what the controller builds worker Jobs from (controller/worker-job.ts reads it
 * through controller/config.ts parseWorkerConfigMap). The controller owns the pod shape; the charts own the values.
 */
import type { EnvironmentConfig } from './config.js';
import { CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT } from '../core/contracts/pod-security.js';
import { NAMES, programEnv, resourceRequirements } from './common.js';
import { CHROMA_MOUNT_PATH, WORKER_CONFIG_KEYS } from '../core/config/env.js';

/** ConfigMap data (all strings) for the worker settings the controller reads; keys from WORKER_CONFIG_KEYS. */
export function workerConfigData(cfg: EnvironmentConfig): Record<string, string> {
  const K = WORKER_CONFIG_KEYS;
  const w = cfg.worker;
  return {
    [K.image]: cfg.images.worker,
    [K.imagePullPolicy]: cfg.imagePullPolicy,
    [K.serviceAccountName]: NAMES.worker,
    [K.resources]: JSON.stringify(resourceRequirements(w.resources)),
    [K.activeDeadlineSeconds]: String(w.activeDeadlineSeconds),
    [K.backoffLimit]: String(w.backoffLimit),
    [K.ttlSecondsAfterFinished]: String(w.ttlSecondsAfterFinished),
    // Remote mode: no volume in worker pods (the controller mounts one only when pvcName is set).
    ...(cfg.storage.mode === 'remote'
      ? {}
      : { [K.pvcName]: NAMES.pvc, [K.chromaMountPath]: CHROMA_MOUNT_PATH }),
    [K.scratchSize]: w.scratchSize,
    [K.batchSize]: String(w.batchSize),
    [K.batchWindowSeconds]: String(w.batchWindowSeconds),
    [K.maxActivePods]: String(w.maxActivePods),
    [K.podSecurityContext]: JSON.stringify(POD_SECURITY_CONTEXT),
    [K.containerSecurityContext]: JSON.stringify(CONTAINER_SECURITY_CONTEXT),
    [K.env]: JSON.stringify(programEnv(cfg, 'worker')),
  };
}

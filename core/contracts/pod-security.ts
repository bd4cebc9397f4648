/**
 * Pod Security Standards "restricted" as core/v1 JSON (non-root, RuntimeDefault seccomp, drop ALL, no escalation,
 * read-only root): the charts' pods (cdk8s/common.ts) and the worker Jobs the controller builds
 * (controller/worker-job.ts) run with these.
 */

/** The numeric user and group every container runs as (the Dockerfile creates it too). */
export const RUN_AS_UID = 10001;
export const RUN_AS_GID = 10001;

export const POD_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_UID,
  runAsGroup: RUN_AS_GID,
  fsGroup: RUN_AS_GID,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

export const CONTAINER_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_UID,
  runAsGroup: RUN_AS_GID,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

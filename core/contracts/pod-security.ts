/**
 * Pod Security Standards "restricted" as core/v1 JSON (non-root, RuntimeDefault seccomp, drop ALL, no escalation,
 * read-only root): the charts' pods (cdk8s/common.ts) and the worker Jobs the controller builds
 * (controller/worker-job.ts) run with these.
 */
import type { PodSecurityContext, SecurityContext } from 'kubernetes-types/core/v1.js';

/** The numeric user and group every container runs as (the Dockerfile creates it too). */
export const RUN_AS_UID = 10001;
export const RUN_AS_GID = 10001;

export const POD_SECURITY_CONTEXT: Readonly<PodSecurityContext> = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_UID,
  runAsGroup: RUN_AS_GID,
  fsGroup: RUN_AS_GID,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
};

export const CONTAINER_SECURITY_CONTEXT: Readonly<SecurityContext> = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_UID,
  runAsGroup: RUN_AS_GID,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

import { createHash } from 'node:crypto';
import { ENV } from '../core/config/env.js';
import { EXIT } from '../core/config/exit-codes.js';
import { API_VERSION, GROUP, KIND } from '../core/contracts/embedding-job.js';
import { WORKER_CONTAINER } from '../core/jobs/lifecycle.js';
import { WORKER_LABELS } from '../core/contracts/labels.js';
import { CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT } from '../core/contracts/pod-security.js';
import type { EnvVar, Volume, VolumeMount } from 'kubernetes-types/core/v1.js';
import type { Job } from '../core/kube/types.js';
import type { WorkerSettings } from './config.js';

/** `ej-a:1,ej-b:3`: member EmbeddingJobs and the attempt this Job is for each of them. */
export const MEMBERS_ANNOTATION = `${GROUP}/members`;

export interface Member {
  name: string;
  attempt: number;
}

export interface MemberRef extends Member {
  uid: string;
}

/** Deterministic: the same members with the same attempts always give the same name (a retried create is a 409). */
export function workerJobName(members: readonly Member[]): string {
  const key = members
    .map((m) => `${m.name}:${m.attempt}`)
    .sort()
    .join(',');
  return `ejw-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export function formatMembers(members: readonly Member[]): string {
  return members.map((m) => `${m.name}:${m.attempt}`).join(',');
}

export function parseMembers(obj: { metadata: { annotations?: Record<string, string> } }): Member[] {
  const raw = obj.metadata.annotations?.[MEMBERS_ANNOTATION];
  if (!raw) return [];
  return raw.split(',').flatMap((part) => {
    const i = part.lastIndexOf(':');
    const attempt = Number(part.slice(i + 1));
    return i > 0 && Number.isInteger(attempt) ? [{ name: part.slice(0, i), attempt }] : [];
  });
}

/** The batch/v1 Job for one batch. Pure: same input, same manifest. */
export function buildWorkerJob(members: readonly MemberRef[], namespace: string, s: WorkerSettings): Job {
  const name = workerJobName(members);
  const annotations = { [MEMBERS_ANNOTATION]: formatMembers(members) };
  const volumes: Volume[] = [{ name: 'tmp', emptyDir: s.scratchSize ? { sizeLimit: s.scratchSize } : {} }];
  const mounts: VolumeMount[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (s.pvcName) {
    volumes.push({ name: 'chroma', persistentVolumeClaim: { claimName: s.pvcName, readOnly: true } });
    mounts.push({ name: 'chroma', mountPath: s.chromaMountPath, readOnly: true });
  }
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace,
      labels: { ...WORKER_LABELS },
      annotations,
      ownerReferences: members.map((m) => ({
        apiVersion: API_VERSION,
        kind: KIND,
        name: m.name,
        uid: m.uid,
        controller: false,
        blockOwnerDeletion: false,
      })),
    },
    spec: {
      backoffLimit: s.backoffLimit,
      activeDeadlineSeconds: s.activeDeadlineSeconds,
      ttlSecondsAfterFinished: s.ttlSecondsAfterFinished,
      podReplacementPolicy: 'Failed',
      podFailurePolicy: {
        rules: [
          {
            action: 'FailJob',
            onExitCodes: {
              containerName: WORKER_CONTAINER,
              operator: 'In',
              values: [EXIT.usage, EXIT.sourceMissing],
            },
          },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
      template: {
        metadata: { labels: { ...WORKER_LABELS }, annotations },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: s.serviceAccountName,
          automountServiceAccountToken: true,
          securityContext: { ...POD_SECURITY_CONTEXT, ...s.podSecurityContext },
          volumes,
          containers: [
            {
              name: WORKER_CONTAINER,
              image: s.image,
              imagePullPolicy: s.imagePullPolicy,
              args: ['worker', '--jobs', members.map((m) => m.name).join(','), '--namespace', namespace],
              env: [
                { name: ENV.WORKER_JOB_NAME, value: name },
                { name: ENV.NAMESPACE, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: ENV.POD_NAME, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // Free-form JSON from the worker ConfigMap: the apiserver validates each entry on create.
                ...(s.env as unknown as EnvVar[]),
              ],
              resources: s.resources,
              securityContext: { ...CONTAINER_SECURITY_CONTEXT, ...s.containerSecurityContext },
              volumeMounts: mounts,
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      },
    },
  };
}

/** True once the Job has a Complete or Failed condition. */
export function jobFinished(job: Job): boolean {
  return !!job.status?.conditions?.some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
}

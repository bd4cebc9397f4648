import type { Condition, EmbeddingJob, EmbeddingJobStatus } from '../contracts/embedding-job.js';
import { removeCondition, setCondition, type ConditionInput } from '../kube/conditions.js';
import type { StatusPatch } from '../kube/embedding-jobs.js';
import type { Job, Pod } from '../kube/types.js';
import {
  exitFailureReason,
  failureVerdict,
  reportVerdict,
  WORKER_CONTAINER,
  type FailureReason,
  type RetrySettings,
  type Verdict,
} from './lifecycle.js';

/**
 * Pure status decision for one EmbeddingJob in Kubernetes: given what the caches say about it, its worker Job and
 * that Job's pods, return the status patch (if anything changed), the Events to record and what else to do. What a
 * worker's outcome does to the job is the shared lifecycle's (lifecycle.ts); this file reads the outcome out of
 * Jobs and pods and phrases the verdict as conditions. Condition types and reasons are the constants below;
 * controller/README.md has the table.
 */
export const CONDITION = {
  Scheduled: 'Scheduled',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Retrying: 'Retrying',
} as const;

export type { FailureReason } from './lifecycle.js';

const IMAGE_PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);

export interface Claim {
  job: Job;
  attempt: number;
}

export interface DecideInput {
  ej: EmbeddingJob;
  /** Worker Jobs that list this EmbeddingJob (any attempt). */
  claims: readonly Claim[];
  /** The Job named in status.workerJob: the object, `gone` (confirmed 404) or `unknown` (not in cache yet). */
  job: Job | 'gone' | 'unknown' | undefined;
  pods: readonly Pod[];
  /** Message of a FailedCreate event on the Job (admission / Pod Security rejected its pod). */
  podRejected?: string;
  /** Why the worker ConfigMap is refused (controller/worker-policy.ts): nothing is dispatched until it is fixed. */
  workerConfigRefused?: string;
  now: Date;
  settings: RetrySettings & {
    finishedTtlMs: number;
    podRejectedGraceMs: number;
    /** A pod that cannot get its image for this long is given up: its Job deleted, the item retried. */
    imagePullGraceMs: number;
  };
}

export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface Decision {
  patch?: StatusPatch;
  events: RecordedEvent[];
  /** Delete the EmbeddingJob (finished and past its TTL). */
  deleteEmbeddingJob?: boolean;
  /** Delete this worker Job (its pods can never be created). */
  deleteJob?: string;
  /** The Job is missing from the cache: confirm with a live GET, then decide again. */
  lookupJob?: string;
  /** No pods for a while: look for FailedCreate events, then decide again. */
  lookupEvents?: string;
  requeueAfterMs?: number;
}

const isTerminal = (phase: string | undefined) => phase === 'Succeeded' || phase === 'Failed';

export function decide(input: DecideInput): Decision {
  const { ej, now, settings } = input;
  const st: EmbeddingJobStatus = ej.status ?? {};
  const phase = st.phase ?? 'Pending';
  const attempts = st.attempts ?? 0;
  const gen = ej.metadata.generation;
  const iso = now.toISOString();
  const cond = (list: Condition[] | undefined, c: ConditionInput) => setCondition(list, c, gen, now);
  // A finished job is looked at again when its TTL ends (then deleted).
  const settled = (v: Verdict): Decision => ({
    ...verdictStatus(ej, v, now),
    ...(v.phase === 'Pending' ? {} : { requeueAfterMs: settings.finishedTtlMs }),
  });

  if (isTerminal(phase)) {
    const done = Date.parse(st.completionTime ?? '') || now.getTime();
    const left = done + settings.finishedTtlMs - now.getTime();
    return left <= 0 ? { events: [], deleteEmbeddingJob: true } : { events: [], requeueAfterMs: left };
  }

  // A report counts only when it names a worker Job that claims this EmbeddingJob: any worker token may patch any
  // EmbeddingJob's status (its Role cannot name objects that do not exist yet), so the report alone proves nothing.
  const reportedBy = st.report?.workerJob;
  const fromClaimant = !!reportedBy && input.claims.some((c) => c.job.metadata.name === reportedBy);

  // A success report ends it, whichever attempt produced it (re-running is harmless; the result is real).
  if (st.report?.outcome === 'Succeeded' && fromClaimant)
    return settled(reportVerdict(st.report, attempts, settings));

  // Adopt the worker Job that claims our next attempt (the dispatcher never writes status).
  const next = input.claims
    .filter((c) => c.attempt === attempts + 1)
    .sort((a, b) =>
      (a.job.metadata.creationTimestamp ?? '').localeCompare(b.job.metadata.creationTimestamp ?? ''),
    )[0];
  if (next) {
    const jobName = next.job.metadata.name;
    let conditions = cond(st.conditions, {
      type: CONDITION.Scheduled,
      status: 'True',
      reason: 'JobCreated',
      message: `worker Job ${jobName} (attempt ${next.attempt})`,
    });
    conditions = removeCondition(conditions, CONDITION.Retrying);
    return {
      patch: {
        phase: 'Scheduled',
        attempts: next.attempt,
        workerJob: jobName,
        startTime: st.startTime ?? iso,
        nextAttemptTime: null,
        report: null,
        conditions,
        observedGeneration: gen,
        message: `attempt ${next.attempt} in worker Job ${jobName}`,
      },
      events: [
        { type: 'Normal', reason: 'Scheduled', message: `attempt ${next.attempt} in worker Job ${jobName}` },
      ],
    };
  }

  // Nothing is dispatched while the worker ConfigMap is refused: say why on every item that waits (once per reason).
  if (phase === 'Pending' && input.workerConfigRefused) {
    const message = input.workerConfigRefused;
    const existing = st.conditions?.find((c) => c.type === CONDITION.Scheduled);
    if (existing?.reason === 'WorkerConfigRefused' && existing.message === message) return { events: [] };
    const conditions = cond(st.conditions, {
      type: CONDITION.Scheduled,
      status: 'False',
      reason: 'WorkerConfigRefused',
      message,
    });
    return {
      patch: { conditions, observedGeneration: gen, message },
      events: [{ type: 'Warning', reason: 'WorkerConfigRefused', message }],
    };
  }

  if (phase === 'Pending' || !st.workerJob) return { events: [] };

  // Scheduled or Running: follow the worker Job.
  const jobName = st.workerJob;
  const retryOrFail = (reason: FailureReason, message: string): Decision =>
    settled(failureVerdict(reason, message, attempts, settings));

  const report = st.report;
  if (report?.outcome === 'Failed' && report.workerJob === jobName && fromClaimant)
    return settled(reportVerdict(report, attempts, settings));

  const job = input.job;
  if (job === undefined || job === 'unknown') return { events: [], lookupJob: jobName };
  if (job === 'gone')
    return retryOrFail('WorkerJobVanished', `worker Job ${jobName} was deleted before reporting`);

  const jobCond = (type: string) =>
    job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  const pod = newest(input.pods);
  const terminated = pod && workerState(pod)?.terminated;

  const complete = jobCond('Complete');
  if (complete) {
    // The report may still be in flight on the EmbeddingJob watch: give it a moment.
    const since = now.getTime() - (Date.parse(complete.lastTransitionTime ?? '') || 0);
    if (since < 5_000) return { events: [], requeueAfterMs: 5_000 - since };
    return retryOrFail('NoReport', `worker Job ${jobName} completed without reporting this EmbeddingJob`);
  }

  const failed = jobCond('Failed');
  if (failed) {
    const exit = terminated?.exitCode;
    const fromExit = exitFailureReason(exit);
    if (fromExit)
      return retryOrFail(
        fromExit,
        `worker exited ${exit} (${fromExit === 'BadInput' ? 'bad input' : 'source missing'}): ${jobText(failed, terminated)}`,
      );
    if (failed.reason === 'DeadlineExceeded')
      return retryOrFail('DeadlineExceeded', failed.message ?? 'activeDeadlineSeconds exceeded');
    if (terminated?.reason === 'OOMKilled')
      return retryOrFail('OOMKilled', `worker was OOMKilled (exit ${exit ?? 137})`);
    return retryOrFail(
      'WorkerError',
      exit === undefined ? jobText(failed) : `worker exited ${exit}: ${jobText(failed, terminated)}`,
    );
  }

  // Still active.
  if (!pod) {
    if (input.podRejected) {
      const d = retryOrFail('PodRejected', input.podRejected);
      return { ...d, deleteJob: jobName };
    }
    const age = ageMs(job, now);
    if (age >= settings.podRejectedGraceMs)
      return { events: [], lookupEvents: jobName, requeueAfterMs: settings.podRejectedGraceMs };
    return { events: [], requeueAfterMs: settings.podRejectedGraceMs - age };
  }

  if (pod.status?.phase === 'Running') {
    if (phase === 'Running') return { events: [] };
    const conditions = cond(st.conditions, {
      type: CONDITION.Running,
      status: 'True',
      reason: 'PodRunning',
      message: `pod ${pod.metadata.name}`,
    });
    return {
      patch: { phase: 'Running', conditions, observedGeneration: gen },
      events: [{ type: 'Normal', reason: 'Running', message: `pod ${pod.metadata.name} is running` }],
    };
  }

  const waiting = workerState(pod)?.waiting;
  const stuck: ConditionInput | undefined =
    waiting?.reason && IMAGE_PULL.has(waiting.reason)
      ? {
          type: CONDITION.Running,
          status: 'False',
          reason: 'ImagePull',
          message: `${waiting.reason}: ${waiting.message ?? ''}`.trim(),
        }
      : pod.status?.conditions?.some(
            (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
          )
        ? {
            type: CONDITION.Running,
            status: 'False',
            reason: 'Unschedulable',
            message: pod.status.conditions.find((c) => c.type === 'PodScheduled')?.message ?? '',
          }
        : undefined;
  if (stuck) {
    let requeue: { requeueAfterMs?: number } = {};
    if (stuck.reason === 'ImagePull') {
      // Never a pod retrying a pull for the Job's whole deadline: after the grace, delete the Job and retry (the
      // image may be fixed in the worker ConfigMap meanwhile); attempts run out as for any other failure.
      const age = ageMs(pod, now);
      if (age >= settings.imagePullGraceMs)
        return {
          ...retryOrFail('ImagePull', `pod ${pod.metadata.name}: ${stuck.message ?? ''}`),
          deleteJob: jobName,
        };
      requeue = { requeueAfterMs: settings.imagePullGraceMs - age };
    }
    const existing = st.conditions?.find((c) => c.type === stuck.type);
    if (existing?.reason === stuck.reason && existing.status === stuck.status)
      return { events: [], ...requeue };
    return {
      patch: { conditions: cond(st.conditions, stuck), observedGeneration: gen },
      events: [{ type: 'Warning', reason: stuck.reason, message: stuck.message ?? '' }],
      ...requeue,
    };
  }
  return { events: [] };
}

/**
 * A lifecycle verdict as an EmbeddingJob status: phase, conditions, message and the Event. The one place that phrases
 * Succeeded, Failed and a retry for Kubernetes (the status reconciler and the Kubernetes JobStore both write it).
 */
export function verdictStatus(
  ej: EmbeddingJob,
  v: Verdict,
  now: Date,
): { patch: StatusPatch; events: RecordedEvent[] } {
  const st: EmbeddingJobStatus = ej.status ?? {};
  const gen = ej.metadata.generation;
  const iso = now.toISOString();
  const cond = (list: Condition[] | undefined, c: ConditionInput) => setCondition(list, c, gen, now);
  if (v.phase === 'Succeeded') {
    let conditions = cond(st.conditions, {
      type: CONDITION.Succeeded,
      status: 'True',
      reason: 'Completed',
      message: summary(st),
    });
    conditions = cond(conditions, { type: CONDITION.Running, status: 'False', reason: 'Completed' });
    conditions = removeCondition(conditions, CONDITION.Retrying);
    return {
      patch: {
        phase: 'Succeeded',
        completionTime: iso,
        conditions,
        observedGeneration: gen,
        message: summary(st),
      },
      events: [{ type: 'Normal', reason: 'Succeeded', message: summary(st) }],
    };
  }
  const { reason } = v;
  if (v.phase === 'Failed') {
    const msg = v.gaveUp ? `gave up after ${st.attempts ?? 0} attempt(s): ${v.message}` : v.message;
    let conditions = cond(st.conditions, { type: CONDITION.Failed, status: 'True', reason, message: msg });
    conditions = cond(conditions, { type: CONDITION.Running, status: 'False', reason });
    conditions = removeCondition(conditions, CONDITION.Retrying);
    return {
      patch: { phase: 'Failed', completionTime: iso, conditions, observedGeneration: gen, message: msg },
      events: [{ type: 'Warning', reason, message: msg }],
    };
  }
  const at = new Date(now.getTime() + v.retryInMs).toISOString();
  const msg = `attempt ${st.attempts ?? 0} failed (${reason}): ${v.message}; retrying at ${at}`;
  let conditions = cond(st.conditions, { type: CONDITION.Retrying, status: 'True', reason, message: msg });
  conditions = cond(conditions, {
    type: CONDITION.Scheduled,
    status: 'False',
    reason: 'BackingOff',
    message: msg,
  });
  conditions = cond(conditions, { type: CONDITION.Running, status: 'False', reason });
  return {
    patch: { phase: 'Pending', nextAttemptTime: at, conditions, observedGeneration: gen, message: msg },
    events: [{ type: 'Warning', reason, message: msg }],
  };
}

function summary(st: EmbeddingJobStatus): string {
  const r = st.result;
  return r
    ? `${r.rows} rows (${r.lines} lines), ${r.words} words, run ${r.runId}`
    : 'worker reported success';
}

/** How long ago the object was created (0 when the timestamp is missing). */
function ageMs(obj: { metadata: { creationTimestamp?: string } }, now: Date): number {
  return now.getTime() - (Date.parse(obj.metadata.creationTimestamp ?? '') || now.getTime());
}

function newest(pods: readonly Pod[]): Pod | undefined {
  return [...pods].sort((a, b) =>
    (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''),
  )[0];
}

function workerState(pod: Pod) {
  const cs = pod.status?.containerStatuses;
  const c = cs?.find((s) => s.name === WORKER_CONTAINER) ?? cs?.[0];
  return c?.state;
}

function jobText(
  c: { reason?: string; message?: string },
  t?: { reason?: string; message?: string },
): string {
  return [c.reason, c.message, t?.message].filter(Boolean).join(': ');
}

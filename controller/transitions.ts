import type { Condition, EmbeddingJob, EmbeddingJobStatus } from '../core/contracts/embedding-job.js';
import { removeCondition, setCondition, type ConditionInput } from '../core/kube/conditions.js';
import type { StatusPatch } from '../core/kube/embedding-jobs.js';
import type { Job, Pod } from '../core/kube/types.js';
import { EXIT } from '../core/config/exit-codes.js';
import { WORKER_CONTAINER } from './worker-job.js';

/**
 * Pure status decision for one EmbeddingJob: given what the caches say about it, its worker Job and that Job's
 * pods, return the status patch (if anything changed), the Events to record and what else to do.
 * Condition types and reasons are the constants below; README.md has the table.
 */
export const CONDITION = {
  Scheduled: 'Scheduled',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Retrying: 'Retrying',
} as const;

export type FailureReason =
  | 'BadInput'
  | 'SourceMissing'
  | 'PodRejected'
  | 'OOMKilled'
  | 'DeadlineExceeded'
  | 'WorkerError'
  | 'NoReport'
  | 'Transient'
  | 'WorkerJobVanished'
  | 'ImagePull';

const TERMINAL_NOW: ReadonlySet<FailureReason> = new Set(['BadInput', 'SourceMissing', 'PodRejected']);

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
  settings: {
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
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

export function retryDelayMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempts - 1), maxMs);
}

export function decide(input: DecideInput): Decision {
  const { ej, now, settings } = input;
  const st: EmbeddingJobStatus = ej.status ?? {};
  const phase = st.phase ?? 'Pending';
  const attempts = st.attempts ?? 0;
  const gen = ej.metadata.generation;
  const iso = now.toISOString();
  const cond = (list: Condition[] | undefined, c: ConditionInput) => setCondition(list, c, gen, now);

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
  if (st.report?.outcome === 'Succeeded' && fromClaimant) {
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
      requeueAfterMs: settings.finishedTtlMs,
    };
  }

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
  const retryOrFail = (reason: FailureReason, message: string): Decision => {
    if (TERMINAL_NOW.has(reason) || attempts >= settings.maxAttempts) {
      const msg = TERMINAL_NOW.has(reason) ? message : `gave up after ${attempts} attempt(s): ${message}`;
      let conditions = cond(st.conditions, { type: CONDITION.Failed, status: 'True', reason, message: msg });
      conditions = cond(conditions, { type: CONDITION.Running, status: 'False', reason });
      conditions = removeCondition(conditions, CONDITION.Retrying);
      return {
        patch: { phase: 'Failed', completionTime: iso, conditions, observedGeneration: gen, message: msg },
        events: [{ type: 'Warning', reason, message: msg }],
        requeueAfterMs: settings.finishedTtlMs,
      };
    }
    const delay = retryDelayMs(attempts, settings.retryBaseMs, settings.retryMaxMs);
    const at = new Date(now.getTime() + delay).toISOString();
    const msg = `attempt ${attempts} failed (${reason}): ${message}; retrying at ${at}`;
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
  };

  const report = st.report;
  if (report?.outcome === 'Failed' && report.workerJob === jobName && fromClaimant) {
    const reason: FailureReason =
      report.reason === 'BadInput' || report.reason === 'SourceMissing' ? report.reason : 'Transient';
    return retryOrFail(reason, report.message ?? 'worker reported a failure');
  }

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
    if (exit === EXIT.usage)
      return retryOrFail('BadInput', `worker exited ${exit} (bad input): ${jobText(failed, terminated)}`);
    if (exit === EXIT.sourceMissing)
      return retryOrFail(
        'SourceMissing',
        `worker exited ${exit} (source missing): ${jobText(failed, terminated)}`,
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

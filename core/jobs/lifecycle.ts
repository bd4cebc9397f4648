import { EXIT } from '../config/exit-codes.js';
import type { WorkerReport } from '../contracts/embedding-job.js';
import { backoffMs } from '../backoff.js';

/**
 * The EmbeddingJob lifecycle rules both modes share: what a worker's outcome does to a job (succeed, fail now, or
 * retry after a backoff). The Kubernetes controller (core/jobs/transitions.ts reading worker Jobs and pods) and the
 * local runner (local/loop.ts reading child processes) classify their facts into these outcomes; the stores
 * (core/ports/job-store.ts) only write the verdicts down. controller/README.md has the table of reasons.
 */

/** The worker's container in its pod (the status reader finds the exit code there). */
export const WORKER_CONTAINER = 'worker';

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
  | 'ImagePull'
  | 'WorkerKilled';

/** Failures that no retry can fix: the input itself is wrong, missing, or refused by admission. */
const TERMINAL_NOW: ReadonlySet<FailureReason> = new Set(['BadInput', 'SourceMissing', 'PodRejected']);

export interface RetrySettings {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** What an outcome does to the job. The message is the store's to phrase (a status condition, a table row). */
export type Verdict =
  | { phase: 'Succeeded' }
  | {
      phase: 'Failed';
      reason: FailureReason;
      message: string;
      /** attempts ran out (vs. terminal now) */ gaveUp: boolean;
    }
  | { phase: 'Pending'; reason: FailureReason; message: string; retryInMs: number };

/**
 * Delay before attempt `attempts + 1`. No jitter: the delay is written into the job (nextAttemptTime), so the same
 * facts must give the same time in both modes; items fail at their own moments, which spreads retries anyway.
 */
export function retryDelayMs(attempts: number, baseMs: number, maxMs: number): number {
  return backoffMs(attempts - 1, { baseMs, maxMs, jitter: 0 });
}

/** A failure of attempt `attempts`: fail now (terminal reason, or attempts used up) or retry after the backoff. */
export function failureVerdict(
  reason: FailureReason,
  message: string,
  attempts: number,
  s: RetrySettings,
): Verdict {
  if (TERMINAL_NOW.has(reason)) return { phase: 'Failed', reason, message, gaveUp: false };
  if (attempts >= s.maxAttempts) return { phase: 'Failed', reason, message, gaveUp: true };
  return {
    phase: 'Pending',
    reason,
    message,
    retryInMs: retryDelayMs(attempts, s.retryBaseMs, s.retryMaxMs),
  };
}

/** A report the worker wrote for the attempt it ran (the caller checks that the reporter claims the job). */
export function reportVerdict(report: WorkerReport, attempts: number, s: RetrySettings): Verdict {
  if (report.outcome === 'Succeeded') return { phase: 'Succeeded' };
  return failureVerdict(reportedFailureReason(report), reportedFailureMessage(report), attempts, s);
}

const reportedFailureMessage = (report: WorkerReport): string =>
  report.message ?? 'worker reported a failure';

/**
 * The verdict of a report that ends the job whatever its attempts (a success, or a failure no retry can fix);
 * undefined for a transient failure. Local mode honours these after a restart of the runner.
 */
export function finalReportVerdict(report: WorkerReport): Verdict | undefined {
  if (report.outcome === 'Succeeded') return { phase: 'Succeeded' };
  const reason = reportedFailureReason(report);
  return TERMINAL_NOW.has(reason)
    ? { phase: 'Failed', reason, message: reportedFailureMessage(report), gaveUp: false }
    : undefined;
}

/** The reason of a failure report: BadInput and SourceMissing are the worker's to say; anything else is Transient. */
export function reportedFailureReason(report: WorkerReport): FailureReason {
  return report.reason === 'BadInput' || report.reason === 'SourceMissing' ? report.reason : 'Transient';
}

/** What became of a job's current attempt, as either mode observes it. */
export type Outcome =
  /** The worker of this attempt wrote a report for the job. */
  | { report: WorkerReport }
  /** The attempt ended without a report: the reader (Kubernetes Job and pod, or local process) says why. */
  | { failure: FailureReason; message: string };

/** The verdict on an attempt; undefined when the job is already finished (a late fact changes nothing). */
export function outcomeVerdict(
  job: { phase: string; attempts: number },
  outcome: Outcome,
  s: RetrySettings,
): Verdict | undefined {
  if (job.phase === 'Succeeded' || job.phase === 'Failed') return undefined;
  return 'report' in outcome
    ? reportVerdict(outcome.report, job.attempts, s)
    : failureVerdict(outcome.failure, outcome.message, job.attempts, s);
}

/** A worker that exited with 2 or 3 failed the whole batch for its input; other codes say nothing of the kind. */
export function exitFailureReason(
  exitCode: number | null | undefined,
): 'BadInput' | 'SourceMissing' | undefined {
  if (exitCode === EXIT.usage) return 'BadInput';
  if (exitCode === EXIT.sourceMissing) return 'SourceMissing';
  return undefined;
}

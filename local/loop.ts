import { createHash } from 'node:crypto';
import { admitEmbedMessage } from '../core/jobs/admission.js';
import {
  exitFailureReason,
  finalReportVerdict,
  outcomeVerdict,
  type FailureReason,
  type Outcome,
  type RetrySettings,
} from '../core/jobs/lifecycle.js';
import type { LocalJob, LocalJobTable } from '../core/local/job-table.js';
import type { LaunchResult, ProcessLauncher } from '../core/local/launcher.js';
import type { SqliteQueue } from '../core/local/sqlite-queue.js';
import type { Logger } from '../core/log.js';
import type { CompactionReport } from '../stream/change-detection.js';
import type { JobStatusSink } from '../stream/job-status.js';

/**
 * Local mode's wiring of the EmbeddingJob lifecycle (core/jobs/): the EMBED queue into the SQLite JobStore through
 * the shared admission rule, job batches into worker processes under a concurrency cap, and each finished process
 * into the shared lifecycle's verdicts. What is local: reading a process's end (exit code, signal, deadline) as an
 * outcome, as core/jobs/transitions.ts reads a worker Job's pods. A message is deleted only after its job row exists.
 */

export interface IngestStats {
  received: number;
  created: number;
  duplicates: number;
  deadLettered: number;
}

/** Drains the EMBED queue into jobs. Returns what it did. */
export async function ingestAll(queue: SqliteQueue, jobs: LocalJobTable, log: Logger): Promise<IngestStats> {
  const stats: IngestStats = { received: 0, created: 0, duplicates: 0, deadLettered: 0 };
  for (;;) {
    const messages = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
    if (messages.length === 0) return stats;
    for (const m of messages) {
      stats.received++;
      const admitted = admitEmbedMessage(m.body);
      if (!admitted.ok) {
        await queue.deadLetter(m, admitted.reason);
        stats.deadLettered++;
        log.warn({ messageId: m.id, reason: admitted.reason }, 'invalid EMBED message dead-lettered');
        continue;
      }
      const { created } = await jobs.create(admitted.message, 'sqs');
      if (created) stats.created++;
      else stats.duplicates++;
      await queue.delete(m.handle);
    }
  }
}

export interface DispatchOptions {
  /** Items per worker process. */
  batchSize: number;
  /** Worker processes at once. */
  concurrency: number;
  maxAttempts: number;
  retryBaseMs: number;
  deadlineMs: number;
  /** The launch spec of one worker batch. */
  workerCommand: (
    workerJob: string,
    names: string[],
  ) => { command: string; args: string[]; env?: Record<string, string> };
  onSettled?: (job: LocalJob) => void;
  onLaunched?: (workerJob: string, names: string[]) => void;
  onFinished?: (res: LaunchResult) => void;
  /**
   * Jobs are still being created until this settles (the runner ingests while the first workers run): dispatch
   * keeps looking for new jobs until then, and fails if it rejects.
   */
  feeding?: Promise<unknown>;
}

/** Receipts per worker of the first wave (slow start: the first deltas, and the first merge, come early). */
export function firstWaveSize(batchSize: number): number {
  return Math.max(1, Math.ceil(batchSize / 5));
}

/**
 * Claims eligible jobs into batches and launches workers while fewer than `concurrency` run. Batches are sized so
 * the work spreads over every worker slot. Returns once nothing is pending or running.
 */
export async function dispatchAll(
  jobs: LocalJobTable,
  launcher: ProcessLauncher,
  o: DispatchOptions,
  log: Logger,
  signal?: AbortSignal,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let launched = 0;
  let feeding = o.feeding !== undefined;
  const fed = o.feeding?.then(() => {
    feeding = false;
  });
  fed?.catch(() => undefined); // awaited below; this only keeps an early rejection from being unhandled
  for (;;) {
    signal?.throwIfAborted();
    const pending = jobs.counts().Pending;
    while (inflight.size < o.concurrency) {
      const slots = o.concurrency - inflight.size;
      // While jobs are still coming in, the pending count says nothing about the total: full batches.
      let size = feeding ? o.batchSize : Math.max(1, Math.min(o.batchSize, Math.ceil(pending / slots)));
      if (launched < o.concurrency) size = Math.min(size, firstWaveSize(o.batchSize));
      const workerJob = `ejw-${createHash('sha256').update(`${Date.now()}-${Math.random()}`).digest('hex').slice(0, 10)}`;
      const claimed = jobs.claim(workerJob, size);
      if (claimed.length === 0) break;
      launched++;
      const names = claimed.map((j) => j.name);
      jobs.markRunning(names);
      log.info({ workerJob, jobs: names.length }, 'worker launched');
      o.onLaunched?.(workerJob, names);
      const p: Promise<void> = launcher
        .launch({ name: workerJob, deadlineMs: o.deadlineMs, ...o.workerCommand(workerJob, names) })
        .then((res) => {
          o.onFinished?.(res);
          settleBatch(jobs, names, res, o, log);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (feeding) {
      // New jobs may appear at any moment: look again soon (a free slot takes them), or when a worker ends.
      await Promise.race([fed, sleep(50), ...inflight]);
      continue;
    }
    if (fed) await fed; // rethrows a failed feed
    if (inflight.size === 0) {
      // Nothing running: done unless a retry is waiting for its backoff.
      const waiting = jobs.list('Pending');
      if (waiting.length === 0) return;
      const next = Math.min(...waiting.map((j) => j.nextAttemptAt ?? 0));
      await sleep(Math.max(10, next - Date.now()));
      continue;
    }
    await Promise.race(inflight);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Local retries wait at most this long (a local run is watched by its user; the controller's cap is configured). */
const RETRY_MAX_MS = 30_000;

const retrySettings = (o: Pick<DispatchOptions, 'maxAttempts' | 'retryBaseMs'>): RetrySettings => ({
  maxAttempts: o.maxAttempts,
  retryBaseMs: o.retryBaseMs,
  retryMaxMs: RETRY_MAX_MS,
});

/** Turns one finished worker process into the lifecycle's verdicts on its jobs. */
export function settleBatch(
  jobs: LocalJobTable,
  names: string[],
  res: LaunchResult,
  o: DispatchOptions,
  log: Logger,
): void {
  const s = retrySettings(o);
  for (const name of names) {
    const job = jobs.get(name);
    if (!job) continue;
    // A report counts for this attempt only when this process wrote it (an older worker's report is stale).
    const outcome: Outcome = job.report?.workerJob === res.name ? { report: job.report } : unreported(res);
    const verdict = outcomeVerdict(job, outcome, s);
    if (!verdict) continue;
    jobs.settle(name, verdict, new Date());
    const settled = jobs.get(name);
    if (settled) o.onSettled?.(settled);
  }
  log.info(
    { workerJob: res.name, reason: res.reason, exitCode: res.exitCode, ms: res.durationMs },
    'worker finished',
  );
}

/** Why a process left an item unreported, read from how it ended. */
function unreported(res: LaunchResult): Outcome {
  const tail = lastLine(res.stderr);
  const fromExit = exitFailureReason(res.exitCode);
  if (fromExit === 'BadInput')
    return { failure: fromExit, message: `worker exited 2 (bad input for the whole batch): ${tail}` };
  if (fromExit === 'SourceMissing')
    return { failure: fromExit, message: `worker exited 3 (source missing): ${tail}` };
  const failure: FailureReason =
    res.reason === 'DeadlineExceeded'
      ? 'DeadlineExceeded'
      : res.exitCode === 0
        ? 'NoReport'
        : res.signal
          ? 'WorkerKilled'
          : 'WorkerError';
  const detail = res.signal ? `killed by ${res.signal}` : `exit ${res.exitCode}`;
  return { failure, message: `worker ${res.name} ${detail}${tail ? `: ${tail}` : ''}` };
}

/**
 * After a crash of the runner: jobs claimed by workers that no longer exist go back to Pending, so the next
 * dispatch re-runs them; a report already written that ends the job (success, or a failure no retry fixes) is
 * honoured. Re-running is harmless: deltas are keyed by run id and vectors are upserted by id.
 */
export function recoverClaims(jobs: LocalJobTable, log: Logger): number {
  let n = 0;
  const now = new Date();
  for (const phase of ['Scheduled', 'Running'] as const) {
    for (const job of jobs.list(phase)) {
      const final = job.report && finalReportVerdict(job.report);
      if (final) jobs.settle(job.name, final, now);
      else
        jobs.retry(
          job.name,
          'RunnerRestarted',
          'the local runner restarted while this job ran',
          now.getTime(),
        );
      n++;
    }
  }
  if (n > 0) log.info({ jobs: n }, 'recovered jobs claimed before a restart');
  return n;
}

/** JobStatusSink on the local job table: the stream processor records compaction outcomes here. */
export class LocalJobStatusSink implements JobStatusSink {
  constructor(private readonly jobs: LocalJobTable) {}

  async report(r: CompactionReport): Promise<void> {
    this.jobs.setCompaction(r.jobName, r.collection, r.state, r.error);
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n').filter(Boolean);
  return (lines.at(-1) ?? '').slice(0, 500);
}

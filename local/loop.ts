import { createHash } from 'node:crypto';
import { EmbedMessage } from '../core/contracts/embed-message.js';
import { describeIssue } from '../core/contracts/validation.js';
import type { LocalJob, LocalJobTable } from '../core/local/job-table.js';
import type { LaunchResult, ProcessLauncher } from '../core/local/launcher.js';
import type { SqliteQueue } from '../core/local/sqlite-queue.js';
import type { Logger } from '../core/log.js';
import type { CompactionReport } from '../stream/change-detection.js';
import type { JobStatusSink } from '../stream/job-status.js';

/**
 * Local mode's replacement for the controller's ingest, dispatch and status (which are Kubernetes-only): a few
 * dozen lines over the local queue, job table and process launcher. Same rules, smaller scale: a message is deleted
 * only after its job row exists; invalid messages are dead-lettered with the reason; jobs are claimed into worker
 * batches under a concurrency cap; a worker reports each item in the job table, and items it left unreported are
 * retried (or failed, for exit codes 2 and 3) as controller/README.md specifies.
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
      let body: unknown;
      try {
        body = JSON.parse(m.body);
      } catch (err) {
        await queue.deadLetter(m, `InvalidMessage: body is not JSON (${(err as Error).message})`);
        stats.deadLettered++;
        continue;
      }
      const parsed = EmbedMessage.safeParse(body);
      if (!parsed.success) {
        const { field, message } = describeIssue(parsed.error);
        await queue.deadLetter(m, `InvalidMessage: ${field ? `${field}: ` : ''}${message}`);
        stats.deadLettered++;
        log.warn({ messageId: m.id, field, message }, 'invalid EMBED message dead-lettered');
        continue;
      }
      const { created } = jobs.createFromMessage(parsed.data, 'sqs');
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

/** Turns one finished worker process into job phases (the controller's status rules, local edition). */
export function settleBatch(
  jobs: LocalJobTable,
  names: string[],
  res: LaunchResult,
  o: DispatchOptions,
  log: Logger,
): void {
  const tail = lastLine(res.stderr);
  for (const name of names) {
    const job = jobs.get(name);
    if (!job || job.phase === 'Succeeded' || job.phase === 'Failed') continue;
    if (job.report?.workerJob === res.name) {
      if (job.report.outcome === 'Succeeded') jobs.succeed(name);
      else if (job.report.reason === 'Transient')
        retryOrFail(jobs, job, 'Transient', job.report.message ?? 'transient failure', o);
      else jobs.fail(name, job.report.reason ?? 'WorkerError', job.report.message ?? 'failed');
    } else if (res.exitCode === 2) {
      jobs.fail(name, 'BadInput', `worker exited 2 (bad input for the whole batch): ${tail}`);
    } else if (res.exitCode === 3) {
      jobs.fail(name, 'SourceMissing', `worker exited 3 (source missing): ${tail}`);
    } else {
      const reason =
        res.reason === 'DeadlineExceeded'
          ? 'DeadlineExceeded'
          : res.exitCode === 0
            ? 'NoReport'
            : res.signal
              ? 'WorkerKilled'
              : 'WorkerError';
      const detail = res.signal ? `killed by ${res.signal}` : `exit ${res.exitCode}`;
      retryOrFail(jobs, job, reason, `worker ${res.name} ${detail}${tail ? `: ${tail}` : ''}`, o);
    }
    const settled = jobs.get(name);
    if (settled) o.onSettled?.(settled);
  }
  log.info(
    { workerJob: res.name, reason: res.reason, exitCode: res.exitCode, ms: res.durationMs },
    'worker finished',
  );
}

function retryOrFail(
  jobs: LocalJobTable,
  job: LocalJob,
  reason: string,
  message: string,
  o: DispatchOptions,
): void {
  if (job.attempts >= o.maxAttempts) {
    jobs.fail(job.name, reason, `${message} (after ${job.attempts} attempts)`);
    return;
  }
  const delay = Math.min(o.retryBaseMs * 2 ** (job.attempts - 1), 30_000);
  jobs.retry(job.name, reason, message, Date.now() + delay);
}

/**
 * After a crash of the runner: jobs claimed by workers that no longer exist go back to Pending (a report already
 * written is honoured), so the next dispatch re-runs them. Re-running is harmless: deltas are keyed by run id and
 * vectors are upserted by id.
 */
export function recoverClaims(jobs: LocalJobTable, log: Logger): number {
  let n = 0;
  for (const phase of ['Scheduled', 'Running'] as const) {
    for (const job of jobs.list(phase)) {
      if (job.report?.outcome === 'Succeeded') jobs.succeed(job.name);
      else if (job.report?.outcome === 'Failed' && job.report.reason !== 'Transient')
        jobs.fail(job.name, job.report.reason ?? 'WorkerError', job.report.message ?? 'failed');
      else
        jobs.retry(job.name, 'RunnerRestarted', 'the local runner restarted while this job ran', Date.now());
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

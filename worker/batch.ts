import type { JobResult } from '../core/contracts/embedding-job.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { BatchLinesIndex } from './batch-lines-index.js';
import { Semaphore } from '../core/concurrency.js';
import { itemContext, type BatchContext, type WorkerDeps } from './context.js';
import { embedItem } from './embed-item.js';
import { finishItem } from './finish-item.js';
import { PhaseTimer } from './phase-timer.js';
import { readReceipt } from './read-receipt.js';
import { resultFromRun } from './run-record.js';
import type { FailureReason, JobOutcome, WorkItem } from './work-item.js';

/** Receipts read + validated at once (`jobConcurrency`) unless configured. */
export const DEFAULT_JOB_CONCURRENCY = 16;

export interface BatchOutcome {
  outcomes: JobOutcome[];
  /** 0: every item reported; 1: some item has no report (retry). See controller/README.md. */
  exitCode: 0 | 1;
  durationMs: number;
  vectors: number;
  merchantIndex?: { version: string; origin: string; openMs: number };
  /** Summed over items (items overlap, so these add up to more than durationMs): where the time goes. */
  phaseMs: Record<string, number>;
  /** Per phase: [first start, last end] in ms since the batch started (when each phase ran, on the wall clock). */
  phaseSpanMs: Record<string, [number, number]>;
}

/**
 * Processes a batch of receipts: for each item, read + validate both NDJSON files, build embedding inputs, embed,
 * resolve the merchant against the live `lines` snapshot (opened once, shared), write one Arrow delta per collection,
 * write the CompactionRun row (conditional), then report. Items are independent: one failing never stops the others;
 * each ends in its own outcome.
 */
export async function processBatch(deps: WorkerDeps, items: WorkItem[]): Promise<BatchOutcome> {
  const t0 = performance.now();
  const timer = new PhaseTimer(t0);
  const linesIndex = new BatchLinesIndex(deps.linesIndex, timer, deps.log);
  const concurrency = Math.max(1, deps.jobConcurrency ?? DEFAULT_JOB_CONCURRENCY);
  const read = new Semaphore(concurrency);
  const write = new Semaphore(Math.max(1, deps.writeConcurrency ?? concurrency));
  const batch: BatchContext = {
    deps,
    timer,
    linesIndex,
    gates: {
      // An item not yet reading when shutdown comes is left for the retry, unreported.
      read: (fn) =>
        read.run(() => {
          if (deps.signal?.aborted) throw new ShuttingDown();
          return fn();
        }),
      write: (fn) => write.run(fn),
    },
  };
  // Open the snapshot while the first receipts are read (it takes a copy and a Chroma start).
  if (deps.linesIndex && items.length > 0) void linesIndex.get();
  let outcomes: JobOutcome[];
  try {
    // Every item runs as its own pipeline: read (bounded) → embed → merchant → write (bounded) → report. A receipt
    // hands its inputs to the embedder as soon as they are built; the embedder coalesces the inputs of every receipt
    // waiting at that moment into shared requests (up to its concurrency in flight), so requests stay full while
    // later receipts are still being read and earlier ones are already being written.
    outcomes = await Promise.all(items.map((item) => processItem(batch, item)));
  } finally {
    await linesIndex.close();
  }
  const { phaseMs, phaseSpanMs } = timer.figures();
  const snapshot = linesIndex.snapshot;
  return {
    outcomes,
    exitCode: outcomes.every((x) => x.reported) ? 0 : 1,
    durationMs: Math.round(performance.now() - t0),
    vectors: outcomes.reduce((n, o) => n + (o.result ? o.result.rows + o.result.words : 0), 0),
    phaseMs,
    phaseSpanMs,
    ...(snapshot ? { merchantIndex: { ...snapshot, openMs: phaseMs.openIndex ?? 0 } } : {}),
  };
}

/** One item, start to report; never throws. */
async function processItem(batch: BatchContext, item: WorkItem): Promise<JobOutcome> {
  const { deps, timer } = batch;
  const log = deps.log.child({ ej: item.name });
  let result: JobResult;
  try {
    result = await embedAndWrite(batch, item, log);
  } catch (err) {
    if (err instanceof ShuttingDown) {
      return { name: item.name, status: 'skipped', reported: false, message: 'shutting down' };
    }
    const reason = failureReason(err);
    const message = errorMessage(err);
    log.warn({ reason, err: message }, 'job failed');
    const reported = await report(log, () => deps.reporter.failed(item, { reason, message }));
    return { name: item.name, status: 'failed', reason, message, reported };
  }
  log.info({ ...result }, 'job succeeded');
  const reported = await timer.timed('report', () =>
    report(log, () => deps.reporter.succeeded(item, result)),
  );
  return { name: item.name, status: 'succeeded', result, reported };
}

/** read (at most `jobConcurrency` at once) → embed → merchant → write (at most `writeConcurrency`). */
async function embedAndWrite(batch: BatchContext, item: WorkItem, log: Logger): Promise<JobResult> {
  const { deps, timer } = batch;
  const ctx = itemContext(deps, item, log);
  const read = await batch.gates.read(() => timer.timed('read', () => readReceipt(deps, ctx)));
  if (read.existing) {
    log.info({ runId: read.existing.run_id }, 'run already recorded for this EmbeddingJob; reporting it');
    return resultFromRun(read.existing, read.existing.run_id, ctx.startedAt);
  }
  return finishItem(batch, ctx, await embedItem(ctx, read, timer));
}

/** The item's failure as the controller's podFailurePolicy knows it: anything not the input's fault is retried. */
function failureReason(err: unknown): FailureReason {
  if (err instanceof PipelineError && (err.reason === 'BadInput' || err.reason === 'SourceMissing'))
    return err.reason;
  return 'Transient';
}

async function report(log: Logger, send: () => Promise<void>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (err) {
    log.error({ err }, 'report failed; the item stays unreported');
    return false;
  }
}

class ShuttingDown extends Error {}

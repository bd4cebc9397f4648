import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import { mapLimit } from '../core/concurrency.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import { changedAnything, sumResults, type BatchResult } from './batch-result.js';
import type { CompactorMetrics } from './metrics.js';
import type { BadRun, GoodRun } from './load-runs.js';
import type { MergedBatch } from './merge.js';
import type { Progress } from './progress.js';

/** What a commit works with: the lane's publish, ledger and queue, and its housekeeping. */
export interface CommitContext {
  readonly c: Collection;
  readonly ledger: Ledger;
  readonly progress: Progress;
  readonly log: Logger;
  /** The compactor's metrics (compactor/metrics.ts) and fault-injection hooks (core/testing/crash-points.ts). */
  readonly metrics: CompactorMetrics;
  readonly hooks?: CrashHooks | undefined;
  queue(): Queue;
  /** Publishes the working copy holding `ids`; returns the version now live. */
  publish(ids: string[]): Promise<string>;
  /** The messages are settled: no longer kept invisible. */
  release(msgs: QueueMessage[]): void;
  /** Prune and mirror after a publish; never throws. */
  afterPublish(): Promise<void>;
}

/** Steps 8–10 for merged batches: one publish (if anything changed), runs decided, messages deleted. */
export async function commitBatches(ctx: CommitContext, parts: MergedBatch[]): Promise<BatchResult> {
  const t0 = performance.now();
  const { c } = ctx;
  const result = sumResults(parts.map((p) => p.result));
  const ids = [...new Set(parts.flatMap((p) => p.ids))];

  if (changedAnything(result)) result.published = await ctx.publish(ids);
  for (const [how, n] of [
    ['added', result.added],
    ['replaced', result.replaced],
    ['unchanged', result.unchanged],
  ] as const) {
    if (n) ctx.metrics.merged.inc({ collection: c, how }, n);
  }

  await markRuns(
    ctx,
    parts.flatMap((p) => p.good),
    parts.flatMap((p) => p.bad),
    result,
  );
  ctx.hooks?.step?.('after-mark');
  ctx.progress.tick();

  // Only now are the messages done.
  const raw = parts.flatMap((p) => p.raw);
  await mapLimit(raw, 8, (m) => ctx.queue().delete(m.handle));
  ctx.release(raw);
  // Housekeeping after the runs are decided, off their path to COMPLETED (neither step throws).
  if (result.published) await ctx.afterPublish();
  // Timings per merged batch, each the time since that batch began when the step ended (load = delta downloads;
  // apply; merge = verified); commitMs: publish, marking, deleting.
  ctx.log.info(
    {
      ...result,
      batches: parts.length,
      ms: parts.map((p) => p.ms),
      commitMs: Math.round(performance.now() - t0),
    },
    'batch done',
  );
  return result;
}

/** Decides the runs: COMPLETED with merged counts, FAILED with the reason (never COMPLETED with zero vectors). */
async function markRuns(
  ctx: CommitContext,
  good: GoodRun[],
  bad: BadRun[],
  result: BatchResult,
): Promise<void> {
  const { c, ledger, log } = ctx;
  await mapLimit(good, 8, async (g) => {
    await ledger.setRunCollection(g.ref, c, { state: 'COMPLETED', mergedVectors: g.records.length });
    result.completed++;
    ctx.metrics.runs.inc({ collection: c, state: 'COMPLETED' });
    const created = Date.parse(g.item.created_at);
    if (Number.isFinite(created)) ctx.metrics.lag.observe({ collection: c }, (Date.now() - created) / 1000);
  });
  await mapLimit(bad, 8, async (b) => {
    await ledger.setRunCollection(b.ref, c, { state: 'FAILED', error: b.error.slice(0, 1000) });
    result.failed++;
    ctx.metrics.runs.inc({ collection: c, state: 'FAILED' });
    log.warn({ runId: b.ref.runId, error: b.error }, 'run FAILED');
  });
}

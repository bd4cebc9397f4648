import { CompactionRunItem, newCompactionRun, type RunDelta } from '../core/contracts/compaction-run.js';
import type { JobResult } from '../core/contracts/embedding-job.js';
import type { Collection } from '../core/contracts/ids.js';
import type { MerchantResult } from '../core/merchant/resolver.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ItemContext } from './context.js';
import type { WorkItem } from './work-item.js';

/** Extra CompactionRun attributes that let a rerun report the same result without redoing the work. */
interface RunExtras {
  job_uid?: string;
  job_lines: number;
  job_rows: number;
  job_words: number;
  merchant_name?: string;
  merchant_reason: string;
  merchant_tier?: string;
}

/** The CompactionRun row of an item whose deltas are written: the compactor's input, and the item's result. */
export function runRecord(
  ctx: ItemContext,
  args: {
    deltas: Partial<Record<Collection, RunDelta>>;
    counts: { lines: number; rows: number; words: number };
    merchant: MerchantResult;
    now?: Date;
  },
): CompactionRunItem {
  const { item, runId, ids, embedder } = ctx;
  const { counts, merchant } = args;
  const extras: RunExtras = {
    ...(item.uid ? { job_uid: item.uid } : {}),
    job_lines: counts.lines,
    job_rows: counts.rows,
    job_words: counts.words,
    ...(merchant.name ? { merchant_name: merchant.name } : {}),
    merchant_reason: merchant.reason,
    ...(merchant.tier ? { merchant_tier: merchant.tier } : {}),
  };
  return {
    ...newCompactionRun({
      runId,
      ...ids,
      jobName: item.name,
      model: embedder.model,
      dimensions: embedder.dimensions,
      deltas: args.deltas,
      now: args.now,
    }),
    ...extras,
  };
}

/** The item's result as its CompactionRun records it (a run written now, or by an earlier pod of the job). */
export function resultFromRun(run: CompactionRunItem, runId: string, startedAt: number): JobResult {
  const x = run as CompactionRunItem & Partial<RunExtras>;
  return {
    runId,
    lines: x.job_lines ?? 0,
    rows: x.job_rows ?? run.lines_vectors ?? 0,
    words: x.job_words ?? run.words_vectors ?? 0,
    ...(run.lines_delta_key ? { linesDeltaKey: run.lines_delta_key } : {}),
    ...(run.words_delta_key ? { wordsDeltaKey: run.words_delta_key } : {}),
    ...(x.merchant_name ? { merchant: x.merchant_name } : {}),
    merchantReason: x.merchant_reason ?? '',
    durationMs: Math.round(performance.now() - startedAt),
  };
}

/**
 * A run this EmbeddingJob already wrote: the one of this attempt, or — when the job has a uid — one of an earlier
 * attempt whose pod died after the ledger write but before its report (neither collection FAILED). Reporting it
 * instead of embedding again keeps one CompactionRun per EmbeddingJob across attempts.
 */
export async function findExistingRun(
  ledger: Ledger,
  item: WorkItem,
  runId: string,
): Promise<CompactionRunItem | undefined> {
  const { imageId, receiptId } = item.spec;
  if (!item.uid) return ledger.getRun(imageId, receiptId, runId);
  const rows = await ledger.query(
    `IMAGE#${imageId}`,
    `RECEIPT#${String(receiptId).padStart(5, '0')}#COMPACTION_RUN#`,
  );
  const runs = rows.map((r) => CompactionRunItem.safeParse(r)).flatMap((r) => (r.success ? [r.data] : []));
  return (
    runs.find((r) => r.run_id === runId) ??
    runs.find((r) => r.job_uid === item.uid && r.lines_state !== 'FAILED' && r.words_state !== 'FAILED')
  );
}

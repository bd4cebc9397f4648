import type { JobResult } from '../core/contracts/embedding-job.js';
import { resolveMerchant } from '../core/merchant/resolver.js';
import { applyMerchant } from '../core/receipt/embedding-inputs.js';
import type { BatchContext, ItemContext } from './context.js';
import type { EmbeddedReceipt } from './embed-item.js';
import { resultFromRun, runRecord } from './run-record.js';
import { writeDeltas } from './write-deltas.js';

/**
 * Resolves the merchant (queries batched across receipts) and puts it into every input's metadata, then — at most
 * `writeConcurrency` receipts at once — writes the deltas and the CompactionRun (conditional).
 */
export async function finishItem(
  batch: BatchContext,
  ctx: ItemContext,
  receipt: EmbeddedReceipt,
): Promise<JobResult> {
  const { deps, timer } = batch;
  const { item, runId, collections, log } = ctx;
  const { items } = receipt;
  const merchant = await timer.timed('merchant', async () => {
    const index = await timer.timed('indexWait', () => batch.linesIndex.get());
    const resolved = await resolveMerchant({
      receipt: receipt.receipt,
      items,
      rowVectors: receipt.rowVectors,
      index,
      placeLookup: deps.placeLookup,
      log,
    });
    applyMerchant(items, resolved.name);
    return resolved;
  });
  // What went into each collection: nothing for one the job left out (its inputs are built, and its rows embedded
  // for merchant resolution, but not written).
  const counts = {
    lines: receipt.receipt.lines.length,
    rows: collections.has('lines') ? items.lines.length : 0,
    words: collections.has('words') ? items.words.length : 0,
  };
  const { run, created } = await timer.gated('writeWait', batch.gates.write, async () => {
    const run = await timer.timed('upload', async () =>
      runRecord(ctx, { deltas: await writeDeltas(deps, ctx, receipt), counts, merchant, now: deps.now?.() }),
    );
    const created = await timer.timed('ledger', () => deps.ledger.putRunIfAbsent(run));
    return { run, created };
  });
  if (!created) {
    // Another pod of the same attempt got there first; the row in the ledger is what the compactor will read.
    const other = await deps.ledger.getRun(item.spec.imageId, item.spec.receiptId, runId);
    log.warn({ runId }, 'CompactionRun already existed (concurrent pod of the same attempt)');
    if (other) return resultFromRun(other, runId, ctx.startedAt);
  }
  log.debug({ runId, embedMs: Math.round(receipt.embedMs) }, 'deltas and run written');
  return resultFromRun(run, runId, ctx.startedAt);
}

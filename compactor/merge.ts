import type { Collection } from '../core/contracts/ids.js';
import { TransientError } from '../core/errors.js';
import { mapLimit } from '../core/concurrency.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { QueueMessage } from '../core/ports/queue.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import { emptyResult, type BatchResult } from './batch-result.js';
import type { CompactorConfig, CompactorDeps } from './config.js';
import type { CompactorMetrics } from './metrics.js';
import { desiredMetadata, loadReceiptFacts, type ReceiptFacts } from './enrich.js';
import {
  groupByBytes,
  loadDeltas,
  loadRunRows,
  type BadRun,
  type ChromaDeltaReader,
  type GoodRun,
} from './load-runs.js';
import { planBatch, receiptKey, touch, type BatchPlan, type Touched } from './plan.js';
import type { Progress } from './progress.js';
import { writeTombstone } from './tombstones.js';
import { planRestamp, planUpserts } from './upsert-plan.js';
import type { WorkingCopy } from './working-copy.js';

/** What a merge works with: one lane's working copy, the ledger and delta store, and how to dead-letter. */
export interface MergeContext {
  readonly c: Collection;
  readonly wc: WorkingCopy;
  readonly deps: Pick<CompactorDeps, 'ledger' | 'objects' | 'bucket'>;
  readonly cfg: Pick<CompactorConfig, 'dimensions' | 'maxGroupBytes'>;
  readonly progress: Progress;
  /** The compactor's metrics (compactor/metrics.ts) and fault-injection hooks (core/testing/crash-points.ts). */
  readonly metrics: CompactorMetrics;
  readonly hooks?: CrashHooks | undefined;
  /** Reads deltas of the original system (Chroma directories) during a cut-over. */
  readonly chroma: ChromaDeltaReader;
  deadLetter(m: QueueMessage, reason: string): Promise<void>;
}

/** What one received batch merged into the working copy: to be published and committed (with others held). */
export interface MergedBatch {
  result: BatchResult;
  ids: string[];
  good: GoodRun[];
  bad: BadRun[];
  raw: QueueMessage[];
  ms: { load: number; apply: number; merge: number };
}

/**
 * Steps 1–7: plan; delete (receipt tombstones first); load runs in groups below maxGroupBytes, each enriched from the
 * ledger and applied before the next is loaded; recompute touched receipts; verify. Nothing is published or
 * acknowledged.
 */
export async function mergeBatch(
  ctx: MergeContext,
  msgs: QueueMessage[],
  signal?: AbortSignal,
): Promise<MergedBatch> {
  const t0 = performance.now();
  const { ledger, objects, bucket } = ctx.deps;
  const result = emptyResult(msgs.length);
  const plan = planBatch(msgs, ctx.c);
  for (const { m, reason } of plan.dlq) {
    await ctx.deadLetter(m, reason);
    result.deadLettered++;
  }
  ctx.progress.tick();

  signal?.throwIfAborted();
  result.deleted = await deleteGone(ctx, plan);
  ctx.progress.tick();

  const { rows, bad } = await loadRunRows(ledger, plan.runs, ctx.c);
  const facts = new FactsCache(ledger);
  await facts.load(plan.touched);

  let dim = ctx.cfg.dimensions ?? (await ctx.wc.dimension());
  const good: GoodRun[] = [];
  const merged = new Set<string>();
  let loadMs = 0;
  for (const group of groupByBytes(rows, ctx.cfg.maxGroupBytes, dim ?? 1536)) {
    const tl = performance.now();
    const loaded = await loadDeltas(objects, bucket, group, ctx.c, dim, ctx.hooks, ctx.chroma);
    loadMs += performance.now() - tl;
    ctx.hooks?.step?.('after-download');
    ctx.progress.tick();
    dim = loaded.dimensions;
    bad.push(...loaded.bad);
    good.push(...loaded.good);
    result.groups++;
    // Collapse per id (a later run of the same receipt wins), enrich from the ledger, apply.
    const records = new Map<string, VectorRecord>();
    for (const g of loaded.good) for (const r of g.records) records.set(r.id, r);
    const receipts = new Map<string, Touched>();
    for (const g of loaded.good) touch({ touched: receipts }, g.ref.imageId, g.ref.receiptId);
    await facts.load(receipts);
    for (const r of records.values()) {
      const p = /^IMAGE#([^#]+)#RECEIPT#(\d{5})/.exec(r.id)!;
      const f = facts.get(receiptKey(p[1]!, Number(p[2])));
      if (f) r.metadata = desiredMetadata(ctx.c, r.id, r.metadata, f);
    }
    await apply(ctx, records, result);
    for (const id of records.keys()) merged.add(id);
    ctx.progress.tick();
  }

  await restampTouched(ctx, plan.touched, facts, merged, result);
  const applyMs = performance.now() - t0;

  const ids = [...merged];
  await verifyMerged(ctx.wc, ids);
  ctx.progress.tick();
  const mergeMs = performance.now() - t0;
  ctx.metrics.mergeSeconds.observe({ collection: ctx.c }, mergeMs / 1000);
  const r = Math.round;
  return {
    result,
    ids,
    good,
    bad,
    raw: plan.parsed.flatMap((p) => p.raw),
    ms: { load: r(loadMs), apply: r(applyMs), merge: r(mergeMs) },
  };
}

/**
 * Deletes first (REMOVE-first order), only of entities really gone from the ledger. A receipt delete leaves a
 * tombstone before its vectors go, so a run created before it and merged later (this batch or any later) is refused
 * rather than bringing the receipt back. Returns how many stored vectors were deleted.
 */
async function deleteGone(ctx: MergeContext, plan: BatchPlan): Promise<number> {
  const { ledger } = ctx.deps;
  const pk = (imageId: string) => `IMAGE#${imageId}`;
  const pad = (n: number) => String(n).padStart(5, '0');
  const toDelete = new Set<string>();
  for (const { imageId, receiptId, at } of plan.deleteReceipts.values()) {
    if (await ledger.getItem({ PK: pk(imageId), SK: `RECEIPT#${pad(receiptId)}` })) continue; // re-created
    await writeTombstone(ledger, imageId, receiptId, at);
    ctx.hooks?.step?.('after-tombstone');
    for (const id of await ctx.wc.receiptIds(imageId, receiptId)) toDelete.add(id);
  }
  for (const id of plan.deleteIds) {
    const m = /^IMAGE#([^#]+)#(.+)$/.exec(id)!;
    if (await ledger.getItem({ PK: pk(m[1]!), SK: m[2]! })) continue;
    toDelete.add(id);
  }
  // A delete followed (in stream order) by a run that re-adds the id: the run wins, as REMOVEs are applied first.
  if (!toDelete.size) return 0;
  const existing = await ctx.wc.presentIds([...toDelete]);
  await ctx.wc.delete([...existing]);
  return existing.size;
}

/** Receipts' ledger facts, each loaded once per batch. */
class FactsCache {
  private readonly facts = new Map<string, ReceiptFacts>();

  constructor(private readonly ledger: Ledger) {}

  get(key: string): ReceiptFacts | undefined {
    return this.facts.get(key);
  }

  async load(touched: Iterable<[string, Touched]>): Promise<void> {
    const missing = [...touched].filter(([key]) => !this.facts.has(key));
    // Concurrent like the run loads: one receipt's facts are three ledger reads, and a batch touches dozens.
    for (const [key, f] of await mapLimit(missing, 8, async ([key, t]) => {
      const f = await loadReceiptFacts(this.ledger, t.imageId, t.receiptId, t.placeRemoved);
      return [key, f] as const;
    }))
      this.facts.set(key, f);
  }
}

/** One group's records against the stored ones (upsert-plan.ts), applied: replaced ones deleted, then added. */
async function apply(
  ctx: MergeContext,
  records: Map<string, VectorRecord>,
  result: BatchResult,
): Promise<void> {
  const { wc } = ctx;
  const { toAdd, toReplace, toUpdate, unchanged } = planUpserts(
    records.values(),
    await wc.getByIds([...records.keys()]),
  );
  result.unchanged += unchanged;
  if (toReplace.length) await wc.delete(toReplace.map((r) => r.id));
  const adds = [...toReplace, ...toAdd];
  const half = Math.ceil(adds.length / 2);
  await wc.add(adds.slice(0, half));
  if (adds.length) ctx.hooks?.step?.('mid-upsert');
  await wc.add(adds.slice(half));
  await wc.updateMetadata(toUpdate);
  result.added += toAdd.length;
  result.replaced += toReplace.length;
  result.updated += toUpdate.length;
}

/** Receipts touched by place/label/section changes: recompute the metadata of their other stored vectors too. */
async function restampTouched(
  ctx: MergeContext,
  touched: Map<string, Touched>,
  facts: FactsCache,
  merged: Set<string>,
  result: BatchResult,
): Promise<void> {
  const { wc } = ctx;
  const plans = await mapLimit([...touched.keys()], 4, async (key) => {
    const t = touched.get(key)!;
    const f = facts.get(key)!;
    const others = (await wc.receiptIds(t.imageId, t.receiptId)).filter((id) => !merged.has(id));
    const current = others.length ? await wc.getByIds(others) : new Map();
    return planRestamp(current.values(), (ex) => desiredMetadata(ctx.c, ex.id, ex.metadata, f));
  });
  const toReplace = plans.flatMap((p) => p.toReplace);
  const toUpdate = plans.flatMap((p) => p.toUpdate);
  if (toReplace.length) await wc.delete(toReplace.map((r) => r.id));
  await wc.add(toReplace);
  await wc.updateMetadata(toUpdate);
  result.replaced += toReplace.length;
  result.updated += toUpdate.length;
}

/** Every merged id is present before anything is published or marked. */
async function verifyMerged(wc: WorkingCopy, ids: string[]): Promise<void> {
  const present = await wc.presentIds(ids);
  if (present.size !== ids.length) {
    const missing = ids.filter((id) => !present.has(id));
    throw new TransientError(`${missing.length} merged id(s) missing after the merge, e.g. ${missing[0]}`);
  }
}

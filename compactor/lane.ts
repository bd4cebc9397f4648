import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Semaphore } from 'async-mutex';
import { backoffMs } from '../core/backoff.js';
import { CompactionMessage } from '../core/contracts/compaction-message.js';
import { runCollection } from '../core/contracts/compaction-run.js';
import type { Collection } from '../core/contracts/ids.js';
import { errorMessage, PipelineError, TransientError } from '../core/errors.js';
import { LeaseLostError } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';
import { mapLimit } from '../core/concurrency.js';
import type { QueueMessage } from '../core/ports/queue.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import { ensureLiveIntact } from '../core/snapshot/repair.js';
import { InvalidVersionIdError } from '../core/snapshot/version-id.js';
import {
  collectionDir,
  CurrentMovedError,
  fsyncDir,
  listVersions,
  newVersionId,
  pruneVersions,
  readCurrent,
  removeLeftovers,
  switchCurrent,
  VERSION_INFO,
  VersionDamagedError,
  versionDir,
  versionsDir,
  writeDurably,
} from '../core/snapshot/volume.js';
import type { CompactorConfig, CompactorDeps } from './config.js';
import { CrashRecord, isolate } from './crash-record.js';
import { desiredMetadata, loadReceiptFacts, sameMetadata, stored, type ReceiptFacts } from './enrich.js';
import { groupByBytes, loadDeltas, loadRunRows, type BadRun, type GoodRun } from './load-runs.js';
import { planBatch, receiptKey, touch, type RunRef, type Touched } from './plan.js';
import { Progress } from './progress.js';
import type { CompactorMetrics } from './metrics.js';
import { S3Mirror } from './s3-mirror.js';
import type { ServerRegistry } from './server-registry.js';
import { copyWhileRestarting } from './stage-copy.js';
import { writeTombstone } from './tombstones.js';
import { WorkingCopy } from './working-copy.js';

/** What a lane needs from its compactor: the shared deps, config, server registry and the volume fence. */
export interface LaneOwner {
  readonly deps: CompactorDeps;
  readonly config: CompactorConfig;
  readonly servers: ServerRegistry;
  /** Two permits, one per lane: a batch takes one, a crash suspect processed alone takes both. */
  readonly permits: Semaphore;
  readonly metrics: CompactorMetrics;
  fence(collection: Collection | undefined): Promise<number>;
}

export interface BatchResult {
  messages: number;
  published?: string;
  completed: number;
  failed: number;
  deadLettered: number;
  added: number;
  replaced: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Groups the batch's runs were loaded in (each below `maxGroupBytes`). */
  groups: number;
}

/** The counts that add up over held batches. */
const COUNTS = [
  'messages',
  'completed',
  'failed',
  'deadLettered',
  'added',
  'replaced',
  'updated',
  'unchanged',
  'deleted',
  'groups',
] as const;

const emptyResult = (messages: number): BatchResult => ({
  ...(Object.fromEntries(COUNTS.map((k) => [k, 0])) as Omit<BatchResult, 'published'>),
  messages,
});

/** What one received batch merged into the working copy: to be published and committed (with others held). */
interface MergedBatch {
  result: BatchResult;
  ids: string[];
  good: GoodRun[];
  bad: BadRun[];
  raw: QueueMessage[];
  ms: { load: number; apply: number; merge: number };
}

/**
 * One collection's lane: receive → merge (plan, load in byte-bounded groups, enrich, apply, verify) → publish
 * (fenced, compare-and-swap of CURRENT) → decide runs → delete messages. A batch that fails is bisected so only the
 * culprit is retried or dead-lettered; a message in whose batch the process died is isolated (CrashRecord).
 */
export class Lane {
  readonly wc: WorkingCopy;
  base: string | undefined;
  readonly progress = new Progress();
  private readonly mirror: S3Mirror;
  private readonly crashes: CrashRecord;
  /** Messages received and not yet settled, kept invisible by one heartbeat. */
  private readonly held = new Map<string, QueueMessage>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(
    private readonly owner: LaneOwner,
    readonly c: Collection,
  ) {
    const { workRoot, root, objects, bucket } = owner.deps;
    this.wc = new WorkingCopy(c, join(workRoot, c, 'work'), owner.servers, owner.config.chromaTimeoutMs);
    this.log = owner.deps.log.child({ collection: c });
    this.mirror = new S3Mirror(
      c,
      {
        objects,
        bucket,
        root,
        log: this.log,
        metrics: owner.metrics,
        assertHeld: () => owner.deps.lease.assertHeld(),
      },
      {
        everyPublishes: this.cfg.s3EveryPublishes,
        everySeconds: this.cfg.s3EverySeconds,
        keep: this.cfg.s3Keep,
      },
    );
    this.crashes = new CrashRecord(join(collectionDir(root, c), 'inflight.json'), this.log);
  }

  private get metrics(): CompactorMetrics {
    return this.owner.metrics;
  }

  /** A fault-injection point of the crash-matrix tests (CompactorDeps.hooks). */
  private crashPoint(step: string): void {
    this.owner.deps.hooks?.step?.(step);
  }

  private get deps(): CompactorDeps {
    return this.owner.deps;
  }
  private get cfg(): CompactorConfig {
    return this.owner.config;
  }
  private get queue() {
    return this.deps.queues[this.c];
  }

  /** True while a batch has not moved for longer than `stallMs`. */
  stalled(): boolean {
    return this.progress.stalledMs() > this.cfg.stallMs;
  }

  /**
   * Working copy = the live version. What an interrupted predecessor left in `versions/` (staging directories) goes
   * first: we hold the lease, so no other writer's staging can be there. A live version that is damaged, missing or
   * named by a corrupt CURRENT is repaired before anything merges on it (core/snapshot/repair.ts): the newest intact
   * version on the volume or archive in S3; with neither, the collection starts empty.
   */
  async init(): Promise<void> {
    const { root } = this.deps;
    const removed = await removeLeftovers(root, this.c);
    if (removed.length) this.log.warn({ removed }, 'removed directories left by an interrupted publish');
    await this.crashes.open();
    await this.openLive();
    this.metrics.versions.set({ collection: this.c }, (await listVersions(root, this.c)).length);
    this.log.info({ base: this.base, count: await this.wc.count() }, 'working copy open');
  }

  /** Resets the working copy to CURRENT, repairing CURRENT first when its copy shows it damaged (or it is missing). */
  private async openLive(): Promise<void> {
    const { root, objects, bucket, workRoot } = this.deps;
    // A CURRENT that names no valid version id is left to ensureLiveIntact, which repairs it like a missing one.
    const current = await readCurrent(root, this.c).catch((err: unknown) => {
      if (err instanceof InvalidVersionIdError) return undefined;
      throw err;
    });
    let known: { version: string; problem: string } | undefined;
    if (current) {
      try {
        await this.wc.reset(versionDir(root, this.c, current));
        this.base = current;
        return;
      } catch (err) {
        if (!(err instanceof VersionDamagedError)) throw err;
        known = { version: current, problem: err.problem };
        this.log.error(
          { version: current, problem: err.problem },
          'the live version is damaged; repairing it',
        );
      }
    }
    const state = await ensureLiveIntact({
      root,
      collection: this.c,
      mirror: { store: objects, bucket },
      workDir: join(workRoot, this.c),
      beforeSwitch: () => this.owner.fence(this.c),
      log: this.log,
      ...(known ? { known } : {}),
    });
    if (state.kind === 'empty') {
      this.log.info('no live version and no S3 snapshot: starting an empty collection');
      await this.wc.reset(undefined);
      this.base = undefined;
      return;
    }
    if (state.kind === 'repaired' && state.from === 'mirror' && !known)
      this.log.info({ version: state.version }, 'volume bootstrapped from the S3 snapshot');
    await this.wc.reset(versionDir(root, this.c, state.version));
    this.base = state.version;
  }

  async close(): Promise<void> {
    await this.mirror.settled();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    await this.wc.stop();
  }

  async loop(signal: AbortSignal): Promise<void> {
    let idleSince = Date.now();
    while (!signal.aborted) {
      let msgs: QueueMessage[];
      try {
        msgs = await this.receive(signal);
      } catch (err) {
        if (signal.aborted) break;
        // Throttled or failed receives count toward nothing (failure 5): back off and poll again.
        this.log.warn({ err: errorMessage(err) }, 'receive failed; backing off');
        await sleep(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (msgs.length === 0) {
        if (this.cfg.exitWhenIdleMs !== undefined && Date.now() - idleSince >= this.cfg.exitWhenIdleMs) break;
        await this.mirror.flush(false);
        continue;
      }
      await this.processHeld(msgs, signal);
      idleSince = Date.now();
    }
  }

  /**
   * Processes received messages: crash-looping ones to the DLQ, the rest in the groups `isolate` forms (suspects of
   * an earlier death apart); the first group also merges (publishHoldMs) the batches already waiting, published and
   * committed together. Not aborted midway by a shutdown: what was received finishes (or fails); a shutdown only
   * takes no more. Returns the counts of what was committed (undefined when nothing was).
   */
  async processHeld(msgs: QueueMessage[], signal: AbortSignal): Promise<BatchResult | undefined> {
    this.hold(msgs);
    this.progress.begin();
    const results: BatchResult[] = [];
    try {
      const { crashLooping, groups } = isolate(msgs, (id) => this.crashes.deaths(id), this.cfg);
      for (const { m, deaths } of crashLooping) {
        await this.giveUp(
          m,
          `CrashLoop: the compactor died ${deaths.deaths} times with this message in its batch, ${deaths.alone} times with it alone`,
        );
      }
      if (crashLooping.length) await this.crashes.end(crashLooping.map((x) => x.m));
      for (const { msgs: group, exclusive } of groups) {
        const holdMore = groups.length === 1 && !exclusive;
        results.push(...(await this.settle(group, signal, { holdMore, exclusive })));
      }
    } finally {
      this.progress.end();
    }
    return results.length ? sum(results) : undefined;
  }

  /**
   * One attempt at `msgs`; when it fails, bisects: each half is tried on its own, and the failing half is bisected
   * further, so innocent messages commit and only the culprit is retried (and dead-lettered after maxReceives).
   * When both halves fail, the cause is not one message (an outage, several bad ones): both go back as they are.
   */
  private async settle(
    msgs: QueueMessage[],
    signal: AbortSignal,
    how: { holdMore: boolean; exclusive: boolean },
  ): Promise<BatchResult[]> {
    const first = await this.attempt(msgs, signal, how);
    if (!('err' in first)) return [first];
    let failing = { msgs: first.msgs, err: first.err };
    const done: BatchResult[] = [];
    while (failing.msgs.length > 1) {
      const mid = Math.ceil(failing.msgs.length / 2);
      const halves = [failing.msgs.slice(0, mid), failing.msgs.slice(mid)];
      const tries = [];
      for (const h of halves)
        tries.push(await this.attempt(h, signal, { holdMore: false, exclusive: false }));
      const failed = tries.flatMap((t) => ('err' in t ? [t] : []));
      done.push(...tries.flatMap((t) => ('err' in t ? [] : [t])));
      if (failed.length === 2) {
        for (const f of failed) await this.failed(f.msgs, f.err);
        return done;
      }
      if (failed.length === 0) return done; // the failure did not repeat: it was not these messages
      this.log.warn(
        { messages: failing.msgs.length, culpritIn: failed[0]!.msgs.length },
        'bisecting a failed batch',
      );
      failing = failed[0]!;
    }
    await this.failed(failing.msgs, failing.err);
    return done;
  }

  /**
   * Merges `msgs` (and, with `holdMore`, batches already waiting, for up to publishHoldMs) and commits them. On an
   * error the working copy is reset to the live version and the messages still unsettled are returned with it.
   */
  private attempt(
    msgs: QueueMessage[],
    signal: AbortSignal,
    how: { holdMore: boolean; exclusive: boolean },
  ): Promise<BatchResult | { msgs: QueueMessage[]; err: unknown }> {
    return this.owner.permits.runExclusive(
      () => this.attemptHolding(msgs, signal, how),
      how.exclusive ? 2 : 1,
    );
  }

  private async attemptHolding(
    msgs: QueueMessage[],
    signal: AbortSignal,
    { holdMore, exclusive }: { holdMore: boolean; exclusive: boolean },
  ): Promise<BatchResult | { msgs: QueueMessage[]; err: unknown }> {
    const batch = msgs.filter((m) => this.held.has(m.handle));
    if (batch.length === 0) return emptyResult(0);
    try {
      await this.crashes.begin(batch, exclusive);
      const parts = [await this.merge(batch)];
      const hold = this.cfg.publishHoldMs;
      const until = Date.now() + (typeof hold === 'number' ? hold : (hold[this.c] ?? 0));
      while (holdMore && Date.now() < until && !signal.aborted) {
        const more = await this.receive(signal, { waitSeconds: 0, windowMs: 0 }).catch(() => []);
        if (more.length === 0) break;
        this.hold(more);
        batch.push(...more);
        await this.crashes.begin(batch, exclusive);
        parts.push(await this.merge(more));
      }
      const result = await this.commit(parts);
      await this.crashes.end(batch);
      return result;
    } catch (err) {
      // A CURRENT moved by someone else is refused and reloaded (below), not a lost lease: ours is still valid.
      const moved = err instanceof CurrentMovedError && !this.deps.lease.lostSignal.aborted;
      if (!moved && (err instanceof LeaseLostError || this.deps.lease.lostSignal.aborted)) {
        this.log.error({ err: errorMessage(err) }, 'lease lost: stopping without writing');
        throw err;
      }
      this.log.error(
        { err: errorMessage(err), messages: batch.length },
        'batch failed; working copy reset to the live version',
      );
      await this.crashes
        .end([])
        .catch((e: unknown) => this.log.warn({ err: errorMessage(e) }, 'crash record not cleared'));
      await this.openLive();
      return { msgs: batch.filter((m) => this.held.has(m.handle)), err };
    }
  }

  /** Receives up to batchSize messages: one long poll, then more for up to the batch window. */
  async receive(
    signal: AbortSignal,
    opts: { waitSeconds: number; windowMs: number } = {
      waitSeconds: this.cfg.waitSeconds,
      windowMs: this.cfg.batchWindowMs,
    },
  ): Promise<QueueMessage[]> {
    const q = this.queue;
    const vis = this.cfg.visibilitySeconds;
    const out = await q.receive({
      maxMessages: 10,
      waitSeconds: opts.waitSeconds,
      visibilitySeconds: vis,
      signal,
    });
    if (out.length === 0) return out;
    const windowEnd = Date.now() + opts.windowMs;
    while (out.length < this.cfg.batchSize && Date.now() < windowEnd && !signal.aborted) {
      let more: QueueMessage[];
      try {
        more = await q.receive({
          maxMessages: Math.min(10, this.cfg.batchSize - out.length),
          waitSeconds: 0,
          visibilitySeconds: vis,
          signal,
        });
      } catch (err) {
        // A throttled fill-up receive ends the window; what we already hold is processed now.
        this.log.warn({ err: errorMessage(err) }, 'receive failed while filling the batch');
        break;
      }
      if (more.length === 0)
        await sleep(Math.min(100, Math.max(0, windowEnd - Date.now())), undefined, { signal }).catch(
          () => undefined,
        );
      out.push(...more);
    }
    return out;
  }

  /** Keeps `msgs` invisible until settled; a stalled lane stops extending them, so they return to the queue. */
  private hold(msgs: QueueMessage[]): void {
    for (const m of msgs) this.held.set(m.handle, m);
    if (this.heartbeat) return;
    const every = Math.max(1000, (this.cfg.visibilitySeconds * 1000) / 2);
    this.heartbeat = setInterval(() => {
      if (this.stalled()) return;
      for (const m of this.held.values())
        void this.queue.changeVisibility(m.handle, this.cfg.visibilitySeconds).catch(() => undefined);
    }, every);
    this.heartbeat.unref();
  }

  private release(msgs: QueueMessage[]): void {
    for (const m of msgs) this.held.delete(m.handle);
  }

  private async deadLetter(m: QueueMessage, reason: string): Promise<void> {
    await this.queue.deadLetter(m, reason);
    this.release([m]);
    this.metrics.dlq.inc({ queue: this.c, reason: reason.split(':')[0]! });
    this.log.warn({ messageId: m.id, reason }, 'message dead-lettered');
  }

  /**
   * A run's message given up on (CrashLoop, RepeatedFailure) FAILs the run for this collection with the reason, so
   * its job reports it and the PENDING sweep does not announce it again.
   */
  private async giveUp(m: QueueMessage, reason: string): Promise<void> {
    await this.failRun(m, reason);
    await this.deadLetter(m, reason);
  }

  /**
   * Before the message leaves: a process killed in between (the other lane crashing on the same culprit) leaves a
   * FAILED run whose message comes back and is given up again, never a dead-lettered message with a PENDING run.
   */
  private async failRun(m: QueueMessage, reason: string): Promise<void> {
    const ref = runOf(m);
    if (!ref) return;
    try {
      // Only a run that carries this collection and has not been decided: never a field the row does not have.
      const item = await this.deps.ledger.getRun(ref.imageId, ref.receiptId, ref.runId);
      const rc = item && runCollection(item, this.c);
      if (rc && rc.state !== 'COMPLETED' && rc.state !== 'FAILED')
        await this.deps.ledger.setRunCollection(ref, this.c, {
          state: 'FAILED',
          error: reason.slice(0, 1000),
        });
    } catch (err) {
      this.log.warn({ err: errorMessage(err), runId: ref.runId }, 'could not mark the run FAILED');
    }
  }

  /** Messages whose processing failed: retried later with backoff; after maxReceives, to the DLQ with the reason. */
  private async failed(msgs: QueueMessage[], err: unknown): Promise<void> {
    const reason = err instanceof PipelineError ? `${err.reason}: ${err.message}` : errorMessage(err);
    for (const m of msgs) {
      try {
        if (m.receiveCount >= this.cfg.maxReceives) {
          await this.giveUp(m, `RepeatedFailure: failed ${m.receiveCount} times; last: ${reason}`);
        } else {
          await this.queue.changeVisibility(m.handle, backoffMs(m.receiveCount, { baseMs: 1, maxMs: 300 }));
          this.release([m]);
        }
      } catch (e) {
        this.log.warn({ err: errorMessage(e) }, 'could not reschedule a failed message');
      }
    }
  }

  /** One batch, merged, published and committed on its own (no isolation, no hold: the bench's unit of work). */
  async processBatch(msgs: QueueMessage[], signal?: AbortSignal): Promise<BatchResult> {
    this.hold(msgs);
    return this.commit([await this.merge(msgs, signal)]);
  }

  /**
   * Steps 1–7: plan; delete (receipt tombstones first); load runs in groups below maxGroupBytes, each enriched from the
   * ledger and applied before the next is loaded; recompute touched receipts; verify. Nothing is published or
   * acknowledged.
   */
  private async merge(msgs: QueueMessage[], signal?: AbortSignal): Promise<MergedBatch> {
    const t0 = performance.now();
    const { ledger, objects, bucket } = this.deps;
    const result = emptyResult(msgs.length);
    const plan = planBatch(msgs, this.c);
    for (const { m, reason } of plan.dlq) {
      await this.deadLetter(m, reason);
      result.deadLettered++;
    }
    this.progress.tick();

    // Deletes first (REMOVE-first order), only of entities really gone from the ledger. A receipt delete leaves a
    // tombstone before its vectors go, so a run created before it and merged later (this batch or any later) is
    // refused rather than bringing the receipt back.
    signal?.throwIfAborted();
    const pk = (imageId: string) => `IMAGE#${imageId}`;
    const pad = (n: number) => String(n).padStart(5, '0');
    const toDelete = new Set<string>();
    for (const { imageId, receiptId, at } of plan.deleteReceipts.values()) {
      if (await ledger.getItem({ PK: pk(imageId), SK: `RECEIPT#${pad(receiptId)}` })) continue; // re-created
      await writeTombstone(ledger, imageId, receiptId, at);
      this.crashPoint('after-tombstone');
      for (const id of await this.wc.receiptIds(imageId, receiptId)) toDelete.add(id);
    }
    for (const id of plan.deleteIds) {
      const m = /^IMAGE#([^#]+)#(.+)$/.exec(id)!;
      if (await ledger.getItem({ PK: pk(m[1]!), SK: m[2]! })) continue;
      toDelete.add(id);
    }
    // A delete followed (in stream order) by a run that re-adds the id: the run wins, as REMOVEs are applied first.
    if (toDelete.size) {
      const existing = await this.wc.presentIds([...toDelete]);
      await this.wc.delete([...existing]);
      result.deleted = existing.size;
    }
    this.progress.tick();

    const { rows, bad } = await loadRunRows(ledger, plan.runs, this.c);
    const facts = new Map<string, ReceiptFacts>();
    const factsFor = async (touched: Iterable<[string, Touched]>) => {
      const missing = [...touched].filter(([key]) => !facts.has(key));
      // Concurrent like the run loads: one receipt's facts are three ledger reads, and a batch touches dozens.
      for (const [key, f] of await mapLimit(missing, 8, async ([key, t]) => {
        const f = await loadReceiptFacts(ledger, t.imageId, t.receiptId, t.placeRemoved);
        return [key, f] as const;
      }))
        facts.set(key, f);
    };
    await factsFor(plan.touched);

    let dim = this.cfg.dimensions ?? (await this.wc.dimension());
    const good: GoodRun[] = [];
    const merged = new Set<string>();
    let loadMs = 0;
    for (const group of groupByBytes(rows, this.cfg.maxGroupBytes, dim ?? 1536)) {
      const tl = performance.now();
      const loaded = await loadDeltas(objects, bucket, group, this.c, dim, this.deps.hooks);
      loadMs += performance.now() - tl;
      this.crashPoint('after-download');
      this.progress.tick();
      dim = loaded.dimensions;
      bad.push(...loaded.bad);
      good.push(...loaded.good);
      result.groups++;
      // Collapse per id (a later run of the same receipt wins), enrich from the ledger, apply.
      const records = new Map<string, VectorRecord>();
      for (const g of loaded.good) for (const r of g.records) records.set(r.id, r);
      const receipts = new Map<string, Touched>();
      for (const g of loaded.good) touch({ touched: receipts }, g.ref.imageId, g.ref.receiptId);
      await factsFor(receipts);
      for (const r of records.values()) {
        const p = /^IMAGE#([^#]+)#RECEIPT#(\d{5})/.exec(r.id)!;
        const f = facts.get(receiptKey(p[1]!, Number(p[2])));
        if (f) r.metadata = desiredMetadata(this.c, r.id, r.metadata, f);
      }
      await this.apply(records, result);
      for (const id of records.keys()) merged.add(id);
      this.progress.tick();
    }

    // Receipts touched by place/label/section changes: recompute the metadata of their other stored vectors too.
    const stale = await mapLimit([...plan.touched.keys()], 4, async (key) => {
      const t = plan.touched.get(key)!;
      const others = (await this.wc.receiptIds(t.imageId, t.receiptId)).filter((id) => !merged.has(id));
      return { f: facts.get(key)!, current: others.length ? await this.wc.getByIds(others) : new Map() };
    });
    const toReplace: VectorRecord[] = [];
    const toUpdate: { id: string; metadata: VectorRecord['metadata'] }[] = [];
    for (const { f, current } of stale) {
      for (const ex of current.values()) {
        const want = desiredMetadata(this.c, ex.id, ex.metadata, f);
        if (sameMetadata(ex.metadata, want)) continue;
        if (keepsKeys(ex.metadata, want)) toUpdate.push({ id: ex.id, metadata: stored(want) });
        else toReplace.push({ id: ex.id, document: ex.document, metadata: want, embedding: ex.embedding! });
      }
    }
    if (toReplace.length) await this.wc.delete(toReplace.map((r) => r.id));
    await this.wc.add(toReplace);
    await this.wc.updateMetadata(toUpdate);
    result.replaced += toReplace.length;
    result.updated += toUpdate.length;
    const applyMs = performance.now() - t0;

    // Verify every merged id is present before anything is published or marked.
    const ids = [...merged];
    const present = await this.wc.presentIds(ids);
    if (present.size !== ids.length) {
      const missing = ids.filter((id) => !present.has(id));
      throw new TransientError(`${missing.length} merged id(s) missing after the merge, e.g. ${missing[0]}`);
    }
    this.progress.tick();
    const mergeMs = performance.now() - t0;
    this.metrics.mergeSeconds.observe({ collection: this.c }, mergeMs / 1000);
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

  /** One group's records against the stored ones: add new ids, skip unchanged, update metadata, else replace. */
  private async apply(records: Map<string, VectorRecord>, result: BatchResult): Promise<void> {
    const existing = await this.wc.getByIds([...records.keys()]);
    const toAdd: VectorRecord[] = [];
    const toReplace: VectorRecord[] = [];
    const toUpdate: { id: string; metadata: VectorRecord['metadata'] }[] = [];
    for (const r of records.values()) {
      const ex = existing.get(r.id);
      if (!ex) toAdd.push(r);
      else if (ex.embedding && sameVector(ex.embedding, r.embedding) && ex.document === r.document) {
        if (sameMetadata(ex.metadata, r.metadata)) result.unchanged++;
        else if (keepsKeys(ex.metadata, r.metadata))
          toUpdate.push({ id: r.id, metadata: stored(r.metadata) });
        else toReplace.push(r);
      } else toReplace.push(r);
    }
    if (toReplace.length) await this.wc.delete(toReplace.map((r) => r.id));
    const adds = [...toReplace, ...toAdd];
    const half = Math.ceil(adds.length / 2);
    await this.wc.add(adds.slice(0, half));
    if (adds.length) this.crashPoint('mid-upsert');
    await this.wc.add(adds.slice(half));
    await this.wc.updateMetadata(toUpdate);
    result.added += toAdd.length;
    result.replaced += toReplace.length;
    result.updated += toUpdate.length;
  }

  /** Steps 8–10 for merged batches: one publish (if anything changed), runs decided, messages deleted. */
  private async commit(parts: MergedBatch[]): Promise<BatchResult> {
    const t0 = performance.now();
    const { ledger } = this.deps;
    const result = sum(parts.map((p) => p.result));
    const ids = [...new Set(parts.flatMap((p) => p.ids))];
    const good = parts.flatMap((p) => p.good);
    const bad = parts.flatMap((p) => p.bad);

    // Publish when something changed; otherwise the live version already holds every merged id.
    const changed = result.deleted + result.added + result.replaced + result.updated > 0;
    if (changed) result.published = await this.publish(ids);
    for (const [how, n] of [
      ['added', result.added],
      ['replaced', result.replaced],
      ['unchanged', result.unchanged],
    ] as const) {
      if (n) this.metrics.merged.inc({ collection: this.c, how }, n);
    }

    // Decide the runs: COMPLETED with merged counts, FAILED with the reason (never COMPLETED with zero vectors).
    await mapLimit(good, 8, async (g) => {
      await ledger.setRunCollection(g.ref, this.c, { state: 'COMPLETED', mergedVectors: g.records.length });
      result.completed++;
      this.metrics.runs.inc({ collection: this.c, state: 'COMPLETED' });
      const created = Date.parse(g.item.created_at);
      if (Number.isFinite(created))
        this.metrics.lag.observe({ collection: this.c }, (Date.now() - created) / 1000);
    });
    await mapLimit(bad, 8, async (b) => {
      await ledger.setRunCollection(b.ref, this.c, { state: 'FAILED', error: b.error.slice(0, 1000) });
      result.failed++;
      this.metrics.runs.inc({ collection: this.c, state: 'FAILED' });
      this.log.warn({ runId: b.ref.runId, error: b.error }, 'run FAILED');
    });
    this.crashPoint('after-mark');
    this.progress.tick();

    // Only now are the messages done.
    const raw = parts.flatMap((p) => p.raw);
    await mapLimit(raw, 8, (m) => this.queue.delete(m.handle));
    this.release(raw);
    // Housekeeping after the runs are decided, off their path to COMPLETED (neither step throws).
    if (result.published) {
      await this.prune();
      await this.mirror.flush(false);
    }
    // Timings per merged batch, each the time since that batch began when the step ended (load = delta downloads;
    // apply; merge = verified); commitMs: publish, marking, deleting.
    this.log.info(
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

  /**
   * Stop (Chroma flushes; its HNSW files are persisted after every merge, see WorkingCopy) → copy into a hidden
   * staging dir on the volume, verified byte-identical by SHA-256 of every file, while the working server restarts on
   * the very bytes being copied and validates them with real Chroma reads (count, a query, every merged id) → rename →
   * fence → compare-and-swap CURRENT from the version the working copy came from. Chroma never runs on the shared
   * volume (slow and unsafe on NFS), and each publish loads the index once (the working server needs it anyway).
   */
  async publish(mergedIds: string[]): Promise<string> {
    const t0 = performance.now();
    const { root } = this.deps;
    const version = newVersionId();
    await this.deps.lease.assertHeld(); // no staging writes on the volume after the lease is gone
    const count = await this.wc.count();
    await this.wc.stop();
    const stopMs = performance.now() - t0;
    const staging = join(versionsDir(root, this.c), `.staging-${version}`);
    await mkdir(staging, { recursive: true });
    let restartMs = 0;
    const files = await copyWhileRestarting(
      this.wc.dir,
      staging,
      async () => {
        const tr = performance.now();
        await this.wc.start();
        await this.validateWorkingCopy(count, mergedIds);
        restartMs = performance.now() - tr;
      },
      [VERSION_INFO], // the working copy holds its base's provenance file; the new one is written below
    );
    this.progress.tick();
    // Provenance next to Chroma's files (Chroma ignores it): who published what, from which base, with which token,
    // and the SHA-256 of every file, checked by every reader's copy (copyVersion).
    await writeDurably(
      join(staging, VERSION_INFO),
      JSON.stringify({
        version,
        collection: this.c,
        base: this.base ?? null,
        count,
        holder: this.deps.lease.identity,
        token: this.deps.lease.token,
        createdAt: new Date().toISOString(),
        files: Object.fromEntries(files),
      }),
    );
    this.crashPoint('after-copy');
    const copyMs = performance.now() - t0 - stopMs;
    await rename(staging, versionDir(root, this.c, version));
    await fsyncDir(versionsDir(root, this.c));
    this.crashPoint('before-switch');
    await this.owner.fence(this.c);
    // Compare-and-swap from the version this working copy came from: a CURRENT moved by anyone else (a restore
    // without the lease, a stale NFS read at start) refuses the publish; the batch reloads CURRENT and is retried.
    await switchCurrent(root, this.c, version, { expected: this.base });
    this.crashPoint('after-switch');
    this.base = version;
    this.mirror.published(version);
    const seconds = (performance.now() - t0) / 1000;
    this.metrics.publishSeconds.observe({ collection: this.c }, seconds);
    this.metrics.publishes.inc({ collection: this.c });
    const ms = (x: number) => Math.round(x);
    this.log.info(
      { version, count, seconds, stopMs: ms(stopMs), copyMs: ms(copyMs), restartMs: ms(restartMs) },
      'published',
    );
    return version;
  }

  /** Real Chroma reads on the restarted working copy: the flushed bytes hold everything (count, a query, every id). */
  private async validateWorkingCopy(count: number, ids: string[]): Promise<void> {
    const got = await this.wc.count();
    if (got !== count) throw new TransientError(`validation: count ${got} after restart, expected ${count}`);
    if (count > 0) await this.wc.probeQuery();
    const present = await this.wc.presentIds(ids);
    if (present.size !== new Set(ids).size) {
      throw new TransientError(
        `validation: ${new Set(ids).size - present.size} merged id(s) missing after restart`,
      );
    }
  }

  /**
   * Old versions (and abandoned staging or damaged dirs) go only after the grace period (`graceMs`, unless given);
   * CURRENT and the newest K stay.
   */
  async prune(graceMs = this.cfg.graceMs): Promise<void> {
    const { root } = this.deps;
    try {
      const removed = await pruneVersions(root, this.c, { keep: this.cfg.keepVersions, graceMs });
      removed.push(...(await removeLeftovers(root, this.c, { graceMs })));
      if (removed.length) this.log.info({ removed }, 'pruned old versions');
      this.metrics.versions.set({ collection: this.c }, (await listVersions(root, this.c)).length);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'prune failed');
    }
  }

  /** Uploads the live version to S3 when due (or `force`). */
  flushS3(force: boolean): Promise<void> {
    return this.mirror.flush(force);
  }
}

/** The run a message announces, if it is a CompactionRun INSERT. */
function runOf(m: QueueMessage): RunRef | undefined {
  let parsed;
  try {
    parsed = CompactionMessage.safeParse(JSON.parse(m.body));
  } catch {
    return undefined;
  }
  if (!parsed.success) return undefined;
  const { entity_type, event_name, entity_data: d } = parsed.data;
  const receiptId = Number(d.receipt_id);
  if (entity_type !== 'COMPACTION_RUN' || event_name !== 'INSERT') return undefined;
  if (typeof d.image_id !== 'string' || typeof d.run_id !== 'string' || !Number.isInteger(receiptId))
    return undefined;
  return { imageId: d.image_id, receiptId, runId: d.run_id };
}

function sum(results: BatchResult[]): BatchResult {
  const out = emptyResult(0);
  for (const r of results) for (const k of COUNTS) out[k] += r[k];
  const published = results.flatMap((r) => (r.published ? [r.published] : [])).at(-1);
  return published ? { ...out, published } : out;
}

function sameVector(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An update can only set keys (Chroma merges metadata and ignores nulls), so a removed key needs delete + add. */
function keepsKeys(before: VectorRecord['metadata'] | null, after: VectorRecord['metadata']): boolean {
  const next = stored(after);
  return Object.keys(stored(before ?? {})).every((k) => k in next);
}

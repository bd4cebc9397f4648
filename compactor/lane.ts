import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Semaphore } from 'async-mutex';
import type { Collection } from '../core/contracts/ids.js';
import { backoffMs } from '../core/backoff.js';
import { LeaseLostError } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';
import type { QueueMessage } from '../core/ports/queue.js';
import { collectionDir, CurrentMovedError, removeLeftovers } from '../core/snapshot/volume.js';
import { emptyResult, sumResults, type BatchResult } from './batch-result.js';
import { bisect, type Failure } from './bisect.js';
import { commitBatches, type CommitContext } from './commit.js';
import type { CompactorConfig, CompactorDeps } from './config.js';
import { CrashRecord } from './crash-record.js';
import { DeadLetters } from './dead-letter.js';
import { crashLoopReason, failureReason, repeatedFailure } from './give-up.js';
import { HeldMessages } from './held-messages.js';
import { isolate } from './isolation.js';
import { fileDeltaReader } from './load-runs.js';
import { mergeBatch, type MergeContext } from './merge.js';
import { openLive, type OpenLiveContext } from './open-live.js';
import { Progress } from './progress.js';
import { countVersions, publishVersion, pruneOld, type PublishContext } from './publish.js';
import { receiveBatch } from './receive.js';
import { S3Mirror } from './s3-mirror.js';
import { sealHot } from './seal.js';
import { BackgroundMerge } from './background-merge.js';
import { sealThreshold } from './merge-policy.js';
import { installMerge, type BuiltMerge } from './segment-merge.js';
import type { ServerRegistry } from './server-registry.js';
import type { CompactorMetrics } from './metrics.js';
import type { RemoteCollection, RemoteStore } from './remote.js';
import { WorkingCopy } from './working-copy.js';

/** What a lane needs from its compactor: the shared deps, config, server registry and the volume fence. */
export interface LaneOwner {
  readonly deps: CompactorDeps;
  readonly config: CompactorConfig;
  readonly servers: ServerRegistry;
  /** Two permits, one per lane: a batch takes one, a crash suspect processed alone takes both. */
  readonly permits: Semaphore;
  readonly metrics: CompactorMetrics;
  /** Remote mode (compactor/remote.ts): the lanes write to a Chroma server instead of publishing versions. */
  readonly remote: RemoteStore | undefined;
  fence(collection: Collection | undefined): Promise<number>;
}

type How = { holdMore: boolean; exclusive: boolean };

/**
 * One collection's lane: receive → merge (compactor/merge.ts) → publish (compactor/publish.ts: fenced,
 * compare-and-swap of CURRENT) → decide runs → delete messages (compactor/commit.ts). A batch that fails is
 * bisected (compactor/bisect.ts) so only the culprit is retried or dead-lettered; a message in whose batch the
 * process died is isolated (compactor/isolation.ts).
 */
export class Lane {
  readonly wc: WorkingCopy;
  /** What batches merge into: the working copy, or in remote mode the server's collection. */
  readonly target: WorkingCopy;
  private readonly remote: RemoteCollection | undefined;
  base: string | undefined;
  readonly progress = new Progress();
  private readonly mirror: S3Mirror;
  private readonly crashes: CrashRecord;
  private readonly held: HeldMessages;
  private readonly log: Logger;
  private readonly rejects: DeadLetters;
  private readonly merging: MergeContext;
  private readonly publishing: PublishContext;
  private readonly opening: OpenLiveContext;
  private readonly committing: CommitContext;
  /** The segment merge building in the background (at most one), and the last one installed (the bench reads it). */
  private readonly merges: BackgroundMerge;
  lastMerge: BuiltMerge | undefined;

  constructor(
    private readonly owner: LaneOwner,
    readonly c: Collection,
  ) {
    const { workRoot, root, objects, bucket, lease } = owner.deps;
    this.wc = new WorkingCopy(c, join(workRoot, c, 'work'), owner.servers, owner.config.chromaTimeoutMs);
    this.remote = owner.remote?.target(c);
    this.target = this.remote ?? this.wc;
    this.log = owner.deps.log.child({ collection: c });
    owner.metrics.initCollection(c);
    this.mirror = new S3Mirror(
      c,
      {
        objects,
        bucket,
        root,
        log: this.log,
        metrics: owner.metrics,
        assertHeld: () => lease.assertHeld(),
      },
      {
        everyPublishes: this.cfg.s3EveryPublishes,
        everySeconds: this.cfg.s3EverySeconds,
        keep: this.cfg.s3Keep,
        graceMs: this.cfg.graceMs,
      },
    );
    this.crashes = new CrashRecord(join(collectionDir(root, c), 'inflight.json'), this.log);
    this.held = new HeldMessages(
      () => this.queue,
      this.cfg.visibilitySeconds,
      () => this.stalled(),
    );
    const { wc, progress, log } = this;
    this.merges = new BackgroundMerge({
      c,
      root,
      workDir: join(workRoot, c, 'merge'),
      registry: owner.servers,
      timeoutMs: owner.config.chromaTimeoutMs,
      log,
    });
    const release = (msgs: QueueMessage[]) => this.held.release(msgs);
    this.rejects = new DeadLetters(c, () => this.queue, owner.deps.ledger, release, log, owner.metrics);
    const deadLetter = (m: QueueMessage, reason: string) => this.rejects.deadLetter(m, reason);
    const { metrics } = owner;
    const { hooks } = owner.deps;
    const cfg = owner.config;
    const chroma = {
      scratch: join(workRoot, c, 'deltas'),
      read: fileDeltaReader,
      limits: {
        maxArchiveBytes: cfg.chromaDeltaMaxArchiveBytes,
        maxBytes: cfg.chromaDeltaMaxBytes,
        maxEntries: cfg.chromaDeltaMaxMembers,
      },
      log,
    };
    this.merging = {
      c,
      wc: this.target,
      deps: owner.deps,
      cfg,
      progress,
      metrics,
      hooks,
      chroma,
      deadLetter,
    };
    const fence = (x: Collection) => owner.fence(x);
    this.publishing = { c, wc, root, lease, progress, log, metrics, hooks, fence };
    this.opening = { c, wc, deps: owner.deps, log, fence };
    this.committing = {
      c,
      ledger: owner.deps.ledger,
      progress,
      log,
      metrics,
      hooks,
      queue: () => this.queue,
      publish: (ids) => this.publish(ids), // through the method, which tests and the bench wrap
      release,
      afterPublish: async () => {
        await this.installMergeIfReady();
        await this.sealIfDue();
        this.startMergeIfDue();
        await this.prune();
        await this.mirror.flush(false);
      },
    };
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
   * Working copy = the live version (compactor/open-live.ts). What an interrupted predecessor left in `versions/`
   * (staging directories) goes first: we hold the lease, so no other writer's staging can be there.
   */
  async init(): Promise<void> {
    const { root } = this.deps;
    const removed = this.remote ? [] : await removeLeftovers(root, this.c);
    if (removed.length) this.log.warn({ removed }, 'removed directories left by an interrupted publish');
    await this.crashes.open();
    await this.openLive();
    await this.sealIfDue(); // a seal cut short (a crash before its switch) is done again, not left for the next publish
    this.startMergeIfDue(); // and a merge cut short is built again
    if (!this.remote) await countVersions(this.owner.metrics, root, this.c);
    this.log.info({ base: this.base, count: await this.target.count() }, 'working copy open');
  }

  /** Resets the working copy to CURRENT (repaired first when damaged or missing). */
  private async openLive(): Promise<void> {
    this.base = this.remote ? await this.remote.openLive() : await openLive(this.opening);
  }

  async close(): Promise<void> {
    await this.merges.drop();
    await this.mirror.settled();
    this.held.stop();
    await this.target.close();
  }

  async loop(signal: AbortSignal): Promise<void> {
    let idleSince = Date.now();
    while (!signal.aborted) {
      let msgs: QueueMessage[];
      const receivedFrom = Date.now();
      try {
        msgs = await this.receive(signal);
      } catch (err) {
        if (signal.aborted) break;
        // Throttled or failed receives count toward nothing (failure 5): back off and poll again.
        this.log.warn({ err }, 'receive failed; backing off');
        await sleep(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (msgs.length === 0) {
        // Idle: nothing received for exitWhenIdleMs, by a receive that began after every retry this lane scheduled
        // was due (a failed batch's messages come back after their backoff, not to a compactor that has left).
        const idle = Date.now() - idleSince >= (this.cfg.exitWhenIdleMs ?? Infinity);
        if (idle && receivedFrom >= this.retriesDueBy) {
          if (!this.merges.pending) break;
          // A merge under way is finished and installed before an idle exit (local mode, tests): not thrown away.
          await this.owner.permits.runExclusive(() => this.installMergeIfReady(true), 1);
          continue;
        }
        if (this.merges.settled) await this.owner.permits.runExclusive(() => this.installMergeIfReady(), 1);
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
    this.held.hold(msgs);
    this.progress.begin();
    const results: BatchResult[] = [];
    try {
      const { crashLooping, groups } = isolate(msgs, (id) => this.crashes.deaths(id), this.cfg);
      // With the other lane idle: it may hold the same culprit, and dying between the DLQ send and the delete would
      // dead-letter this message twice.
      if (crashLooping.length)
        await this.owner.permits.runExclusive(async () => {
          for (const { m, deaths } of crashLooping) await this.rejects.giveUp(m, crashLoopReason(deaths));
          await this.crashes.end(crashLooping.map((x) => x.m));
        }, 2);
      for (const { msgs: group, exclusive } of groups) {
        const holdMore = groups.length === 1 && !exclusive;
        results.push(...(await this.settle(group, signal, { holdMore, exclusive })));
      }
    } finally {
      this.progress.end();
    }
    return results.length ? sumResults(results) : undefined;
  }

  /** Attempts `msgs`, bisecting a failure down to its culprit; what still fails is retried later or given up. */
  private async settle(msgs: QueueMessage[], signal: AbortSignal, how: How): Promise<BatchResult[]> {
    const { done, failures } = await bisect(
      msgs,
      (part, first) => this.attempt(part, signal, first ? how : { holdMore: false, exclusive: false }),
      (from, to) => this.log.warn({ messages: from, culpritIn: to }, 'bisecting a failed batch'),
    );
    for (const f of failures) await this.failed(f.msgs, f.err);
    return done;
  }

  /**
   * Merges `msgs` (and, with `holdMore`, batches already waiting, for up to publishHoldMs) and commits them. On an
   * error the working copy is reset to the live version and the messages still unsettled are returned with it.
   */
  private attempt(
    msgs: QueueMessage[],
    signal: AbortSignal,
    how: How,
  ): Promise<BatchResult | Failure<QueueMessage>> {
    return this.owner.permits.runExclusive(
      () => this.attemptHolding(msgs, signal, how),
      how.exclusive ? 2 : 1,
    );
  }

  private async attemptHolding(
    msgs: QueueMessage[],
    signal: AbortSignal,
    { holdMore, exclusive }: How,
  ): Promise<BatchResult | Failure<QueueMessage>> {
    const batch = msgs.filter((m) => this.held.has(m));
    if (batch.length === 0) return emptyResult(0);
    try {
      await this.crashes.begin(batch, exclusive);
      const parts = [await mergeBatch(this.merging, batch)];
      const hold = this.cfg.publishHoldMs;
      const until = Date.now() + (typeof hold === 'number' ? hold : (hold[this.c] ?? 0));
      while (holdMore && Date.now() < until && !signal.aborted) {
        const more = await this.receive(signal, { waitSeconds: 0, windowMs: 0 }).catch(() => []);
        if (more.length === 0) break;
        this.held.hold(more);
        batch.push(...more);
        await this.crashes.begin(batch, exclusive);
        parts.push(await mergeBatch(this.merging, more));
      }
      const result = await commitBatches(this.committing, parts);
      await this.crashes.end(batch);
      return result;
    } catch (err) {
      // A CURRENT moved by someone else is refused and reloaded (below), not a lost lease: ours is still valid.
      const moved = err instanceof CurrentMovedError && !this.deps.lease.lostSignal.aborted;
      if (!moved && (err instanceof LeaseLostError || this.deps.lease.lostSignal.aborted)) {
        this.log.error({ err }, 'lease lost: stopping without writing');
        throw err;
      }
      this.log.error({ err, messages: batch.length }, 'batch failed; working copy reset to the live version');
      await this.crashes.end([]).catch((e: unknown) => this.log.warn({ err: e }, 'crash record not cleared'));
      await this.openLive();
      return { msgs: batch.filter((m) => this.held.has(m)), err };
    }
  }

  /** Receives up to batchSize messages: one long poll, then more for up to the batch window. */
  receive(
    signal: AbortSignal,
    opts: { waitSeconds: number; windowMs: number } = {
      waitSeconds: this.cfg.waitSeconds,
      windowMs: this.cfg.batchWindowMs,
    },
  ): Promise<QueueMessage[]> {
    const { batchSize, visibilitySeconds } = this.cfg;
    return receiveBatch(this.queue, { ...opts, batchSize, visibilitySeconds }, signal, this.log);
  }

  /** When the last retry this lane scheduled (a failed message made visible again) is due (epoch ms). */
  private retriesDueBy = 0;

  /** Messages whose processing failed: retried later with backoff; after maxReceives, to the DLQ with the reason. */
  private async failed(msgs: QueueMessage[], err: unknown): Promise<void> {
    const reason = failureReason(err);
    for (const m of msgs) {
      try {
        const givenUp = repeatedFailure(m, this.cfg.maxReceives, reason);
        if (givenUp) {
          await this.rejects.giveUp(m, givenUp);
        } else {
          const seconds = backoffMs(m.receiveCount, { baseMs: 1, maxMs: 300 });
          await this.queue.changeVisibility(m.handle, seconds);
          this.retriesDueBy = Math.max(this.retriesDueBy, Date.now() + seconds * 1000);
          this.held.release([m]);
        }
      } catch (e) {
        this.log.warn({ err: e }, 'could not reschedule a failed message');
      }
    }
  }

  /** One batch, merged, published and committed on its own (no isolation, no hold: the bench's unit of work). */
  async processBatch(msgs: QueueMessage[], signal?: AbortSignal): Promise<BatchResult> {
    this.held.hold(msgs);
    return commitBatches(this.committing, [await mergeBatch(this.merging, msgs, signal)]);
  }

  /** Publishes the working copy as the new live version (compactor/publish.ts), the base of what merges next. */
  async publish(mergedIds: string[]): Promise<string> {
    if (this.remote) return (this.base = await this.remote.commit());
    const version = await publishVersion(this.publishing, this.base, mergedIds);
    this.base = version;
    this.mirror.published(version);
    return version;
  }

  /**
   * Seals the hot segment once it holds `sealVectors` (compactor/seal.ts), after the runs of the batch are decided:
   * off their path to COMPLETED. A failed seal changes nothing live: it is logged and the working copy reset to
   * CURRENT (a lost lease still stops the lane).
   */
  async sealIfDue(): Promise<void> {
    if (this.remote) return; // remote mode: the server's collection, no versions and no segments
    if ((await this.wc.hotCount()) < sealThreshold(this.cfg, this.wc.manifest())) return;
    try {
      const { version } = await sealHot(this.publishing, this.base);
      this.base = version;
      this.mirror.published(version);
    } catch (err) {
      if (err instanceof LeaseLostError && !(err instanceof CurrentMovedError)) throw err;
      this.log.error({ err }, 'seal failed; working copy reset to the live version');
      await this.openLive();
    }
  }

  /** Starts the merge the policy asks for (compactor/merge-policy.ts) in the background, unless one is pending. */
  startMergeIfDue(): void {
    if (this.remote || !this.base) return;
    this.merges.startIfDue(this.cfg, this.base, this.wc.manifest());
  }

  /**
   * Installs the background merge once built (compactor/segment-merge.ts installMerge), or with `wait` once it is:
   * between batches, when the working copy is exactly `base`. A failed install changes nothing live: it is logged and
   * the working copy reset to CURRENT (a lost lease still stops the lane).
   */
  async installMergeIfReady(wait = false): Promise<void> {
    if (this.remote) return;
    const taken = await this.merges.take(wait);
    const built = taken?.built;
    if (!built) return;
    let installed = false;
    try {
      const version = await installMerge(this.publishing, this.base, built);
      if (version) {
        installed = true;
        this.base = version;
        this.lastMerge = built;
        this.mirror.published(version);
      } else this.log.info({ inputs: built.plan.inputs }, 'merged segment dropped: an input is gone');
    } catch (err) {
      if (err instanceof LeaseLostError && !(err instanceof CurrentMovedError)) throw err;
      this.log.error({ err }, 'merge install failed; working copy reset to the live version');
      await this.openLive();
    } finally {
      await this.merges.clearScratch();
    }
    if (installed) this.startMergeIfDue(); // a seal made while this one was built is merged next
  }

  /** Old versions go after the grace period (`graceMs`, unless given); CURRENT and the newest K stay. */
  prune(graceMs = this.cfg.graceMs): Promise<void> {
    if (this.remote) return Promise.resolve(); // no versions: the server's collection is the only copy
    return pruneOld(this.publishing, { keep: this.cfg.keepVersions, graceMs });
  }

  /** Uploads the live version to S3 when due (or `force`). */
  flushS3(force: boolean): Promise<void> {
    return this.mirror.flush(force);
  }
}

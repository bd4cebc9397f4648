import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompactionMessage } from '../core/contracts/compaction-message.js';
import { runCollection, type CompactionRunItem } from '../core/contracts/compaction-run.js';
import { receiptPrefix, type Collection } from '../core/contracts/ids.js';
import { decodeDelta, MAX_DELTA_BYTES } from '../core/delta/arrow-delta.js';
import { errorMessage, ObjectTooLargeError, PipelineError, TransientError } from '../core/errors.js';
import type { FencedLease } from '../core/lease/lease.js';
import { LeaseLostError } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import { ensureLiveIntact } from '../core/snapshot/repair.js';
import { archiveKey, pointerKey, uploadSnapshot } from '../core/snapshot/s3-snapshot.js';
import { InvalidVersionIdError } from '../core/snapshot/version-id.js';
import {
  fsyncDir,
  listVersions,
  pruneVersions,
  readCurrent,
  switchCurrent,
  versionDir,
  versionsDir,
  newVersionId,
  writeDurably,
  collectionDir,
  removeLeftovers,
  VERSION_INFO,
  VersionDamagedError,
} from '../core/snapshot/volume.js';
import { readFile } from 'node:fs/promises';
import { compactorMetrics as metrics } from '../stream/metrics.js';
import { crashPoint } from './crash.js';
import { desiredMetadata, loadReceiptFacts, sameMetadata, stored, type ReceiptFacts } from './enrich.js';
import { ServerRegistry } from './server-registry.js';
import { copyWhileRestarting } from './stage-copy.js';
import { WorkingCopy } from './working-copy.js';
import { mapLimit } from '../core/map-limit.js';

export interface CompactorConfig {
  /** Most messages per batch and collection. */
  batchSize: number;
  /** After the first message arrives, keep receiving for up to this long to fill the batch. */
  batchWindowMs: number;
  /** Long-poll wait of the first receive. */
  waitSeconds: number;
  /** Visibility timeout of received messages (extended while a batch is in progress). */
  visibilitySeconds: number;
  /** A message whose processing failed and that was received this many times goes to the DLQ with the reason. */
  maxReceives: number;
  /** Versions kept on the volume (besides CURRENT) and their minimum age before removal. */
  keepVersions: number;
  graceMs: number;
  /**
   * On a clean shutdown, prune once more with this grace period instead of `graceMs` (unset: no prune at shutdown).
   * Local mode: the versions published in the run's last minute would otherwise stay until the next run.
   */
  shutdownGraceMs?: number;
  /** S3 snapshot after this many publishes or seconds (and on shutdown); newest K kept there. */
  s3EveryPublishes: number;
  s3EverySeconds: number;
  s3Keep: number;
  /** Expected vector dimension; when unset, the collection's own (or the first delta's). */
  dimensions?: number;
  /**
   * After a batch is merged, keep merging the batches already waiting in the queue for up to this long before one
   * publish covers them all (0 = publish after every batch). Fewer publishes under a backlog; a run waits at most this
   * much longer for COMPLETED. One value for both lanes, or one per collection (a missing collection: 0).
   */
  publishHoldMs: number | Partial<Record<Collection, number>>;
  /** Stop (exit 0) when both queues were empty this long; unset = run until signalled. */
  exitWhenIdleMs?: number;
}

export const DEFAULT_CONFIG: CompactorConfig = {
  batchSize: 1000,
  batchWindowMs: 2000,
  publishHoldMs: 0,
  waitSeconds: 20,
  // Short, and kept alive by a heartbeat every half of it while a batch is held (keepInvisible): a compactor that
  // is killed gives its messages back within a minute, not fifteen.
  visibilitySeconds: 60,
  maxReceives: 20,
  keepVersions: 5,
  graceMs: 10 * 60_000,
  s3EveryPublishes: 10,
  s3EverySeconds: 300,
  s3Keep: 4,
};

export interface CompactorDeps {
  queues: Record<Collection, Queue>;
  ledger: Ledger;
  objects: ObjectStore;
  bucket: string;
  lease: FencedLease;
  /** Shared volume root (`{root}/{collection}/versions/…`, `CURRENT`). */
  root: string;
  /** Local scratch for the working copies (never on the shared volume). */
  workRoot: string;
  log: Logger;
  config?: Partial<CompactorConfig>;
}

interface ParsedMessage {
  raw: QueueMessage[];
  msg: CompactionMessage;
}

/** What one received batch merged into the working copy: to be published and committed (with others held). */
interface MergedBatch {
  result: BatchResult;
  ids: string[];
  good: { ref: RunRef; item: CompactionRunItem; records: VectorRecord[] }[];
  bad: { ref: RunRef; error: string }[];
  raw: QueueMessage[];
  ms: { load: number; enrich: number; apply: number; merge: number };
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
] as const;

interface RunRef {
  imageId: string;
  receiptId: number;
  runId: string;
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
}

/**
 * The singleton compactor (DESIGN §2, issue 5): LINES/WORDS messages → merged working copy → immutable version on the
 * shared volume (fenced) → runs COMPLETED → messages deleted. One lane per collection, running concurrently so the
 * two queues never starve each other (failure 6). All outside systems are ports; local mode passes its own.
 */
export class Compactor {
  readonly config: CompactorConfig;
  readonly lanes: Record<Collection, Lane>;
  readonly servers: ServerRegistry;
  private ready = false;

  constructor(readonly deps: CompactorDeps) {
    this.config = { ...DEFAULT_CONFIG, ...(deps.config ?? {}) };
    this.servers = new ServerRegistry(deps.workRoot, deps.log);
    this.lanes = { lines: new Lane(this, 'lines'), words: new Lane(this, 'words') };
  }

  isReady(): boolean {
    return this.ready && this.deps.lease.token !== undefined;
  }

  /**
   * Acquires the lease, opens the working copies and processes batches until `signal` aborts (or idle exit).
   * Throws LeaseLostError when the lease is lost: the caller must exit non-zero without writing anything more.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { lease, log } = this.deps;
    log.info({ identity: lease.identity }, 'waiting for the compactor lease');
    const token = await lease.acquire(signal);
    log.info({ token }, 'compactor lease held');
    // A lane that fails stops the other one too (after its current batch), before anything is closed.
    const laneFailed = new AbortController();
    const stop = AbortSignal.any([signal, lease.lostSignal, laneFailed.signal]);
    try {
      await this.servers.reap(); // servers orphaned by a killed predecessor must not share our directories
      await this.fence(undefined); // claim the volume for this token before anything else
      // Lanes share nothing but the lease: their working copies and Chroma servers come up side by side.
      const inits = await Promise.allSettled(Object.values(this.lanes).map((l) => l.init()));
      for (const r of inits) if (r.status === 'rejected') throw r.reason;
      this.ready = true;
      const results = await Promise.allSettled(
        Object.values(this.lanes).map((l) =>
          l.loop(stop).catch((err: unknown) => {
            laneFailed.abort(err);
            throw err;
          }),
        ),
      );
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      if (lease.lostSignal.aborted) throw lease.lostSignal.reason as Error;
      // Clean shutdown: mirror what is unmirrored, prune (shutdownGraceMs), then give the lease up.
      for (const lane of Object.values(this.lanes)) await lane.flushS3(true);
      const grace = this.config.shutdownGraceMs;
      if (grace !== undefined) for (const lane of Object.values(this.lanes)) await lane.prune(grace);
    } finally {
      this.ready = false;
      for (const lane of Object.values(this.lanes)) await lane.close();
      if (!lease.lostSignal.aborted) await lease.release();
    }
  }

  /**
   * The fence before a commit point: the lease must still be ours (re-read from its backend), and no higher token may
   * have claimed the volume. Records our token on the volume so a stale holder fails this check afterwards.
   */
  async fence(collection: Collection | undefined): Promise<number> {
    const token = await this.deps.lease.assertHeld();
    const path = join(this.deps.root, 'FENCE');
    await mkdir(this.deps.root, { recursive: true });
    let recorded = 0;
    try {
      recorded = Number((await readFile(path, 'utf8')).trim()) || 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (recorded > token) {
      throw new LeaseLostError(`volume fenced by token ${recorded}, ours is ${token}`, { collection });
    }
    if (recorded < token) {
      const tmp = `${path}.${process.pid}.tmp`;
      await writeDurably(tmp, `${token}\n`);
      await rename(tmp, path);
      await fsyncDir(this.deps.root);
    }
    return token;
  }
}

class Lane {
  readonly wc: WorkingCopy;
  base: string | undefined;
  private publishesSinceUpload = 0;
  private lastUpload = Date.now();
  private unmirrored: string | undefined;
  private upload: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(
    private readonly owner: Compactor,
    readonly c: Collection,
  ) {
    this.wc = new WorkingCopy(c, join(owner.deps.workRoot, c, 'work'), owner.servers);
    this.log = owner.deps.log.child({ collection: c });
  }

  private get deps(): CompactorDeps {
    return this.owner.deps;
  }
  private get cfg(): CompactorConfig {
    return this.owner.config;
  }

  /**
   * Working copy = the live version. What an interrupted predecessor left in `versions/` (staging directories) goes
   * first: we hold the lease, so no other writer's staging can be there. A live version that is damaged or missing is
   * repaired before anything merges on it (core/snapshot/repair.ts): the newest intact older version on the volume or
   * archive in S3, so an empty volume is restored from S3 (and that version published); with neither, the
   * collection starts empty.
   */
  async init(): Promise<void> {
    const { root } = this.deps;
    const removed = await removeLeftovers(root, this.c);
    if (removed.length) this.log.warn({ removed }, 'removed directories left by an interrupted publish');
    await this.openLive();
    metrics.versions.set({ collection: this.c }, (await listVersions(root, this.c)).length);
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
    await this.upload.catch(() => undefined);
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
        await this.flushS3(false);
        continue;
      }
      await this.processHeld(msgs, signal);
      idleSince = Date.now();
    }
  }

  /**
   * Merges `msgs`, then (publishHoldMs) the batches already waiting, and publishes and commits them together. Not
   * aborted midway by a shutdown: what was received finishes (or fails) as a whole; a shutdown only takes no more.
   */
  async processHeld(msgs: QueueMessage[], signal: AbortSignal): Promise<BatchResult | undefined> {
    const held = [...msgs];
    const heartbeats = [this.keepInvisible(msgs)];
    try {
      const parts = [await this.merge(msgs)];
      const hold = this.cfg.publishHoldMs;
      const until = Date.now() + (typeof hold === 'number' ? hold : (hold[this.c] ?? 0));
      while (Date.now() < until && !signal.aborted) {
        const more = await this.receive(signal, { waitSeconds: 0, windowMs: 0 }).catch(() => []);
        if (more.length === 0) break;
        held.push(...more);
        heartbeats.push(this.keepInvisible(more));
        parts.push(await this.merge(more));
      }
      return await this.commit(parts);
    } catch (err) {
      if (err instanceof LeaseLostError || this.deps.lease.lostSignal.aborted) {
        this.log.error({ err: errorMessage(err) }, 'lease lost: stopping without writing');
        throw err;
      }
      await this.failed(held, err);
      return undefined;
    } finally {
      for (const h of heartbeats) clearInterval(h);
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
    const q = this.deps.queues[this.c];
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

  private keepInvisible(msgs: QueueMessage[]): NodeJS.Timeout {
    const q = this.deps.queues[this.c];
    const every = Math.max(1000, (this.cfg.visibilitySeconds * 1000) / 2);
    const t = setInterval(() => {
      for (const m of msgs)
        void q.changeVisibility(m.handle, this.cfg.visibilitySeconds).catch(() => undefined);
    }, every);
    t.unref();
    return t;
  }

  /** A batch failed as a whole (transient): retry later; a message that keeps failing goes to the DLQ with the reason. */
  private async failed(msgs: QueueMessage[], err: unknown): Promise<void> {
    const reason = err instanceof PipelineError ? `${err.reason}: ${err.message}` : errorMessage(err);
    this.log.error(
      { err: reason, messages: msgs.length },
      'batch failed; working copy reset to the live version',
    );
    const q = this.deps.queues[this.c];
    for (const m of msgs) {
      try {
        if (m.receiveCount >= this.cfg.maxReceives) {
          await q.deadLetter(m, `failed ${m.receiveCount} times; last: ${reason}`);
          metrics.dlq.inc({ queue: this.c, reason: 'RepeatedFailure' });
        } else {
          await q.changeVisibility(m.handle, Math.min(2 ** m.receiveCount, 300));
        }
      } catch (e) {
        this.log.warn({ err: errorMessage(e) }, 'could not reschedule a failed message');
      }
    }
    try {
      await this.openLive();
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'could not reset the working copy');
      throw e;
    }
  }

  /** One batch, merged, published and committed on its own. */
  async processBatch(msgs: QueueMessage[], signal?: AbortSignal): Promise<BatchResult> {
    return this.commit([await this.merge(msgs, signal)]);
  }

  /** Steps 1–7: parse, plan, load, enrich, apply to the working copy, verify. Nothing is published or acknowledged. */
  private async merge(msgs: QueueMessage[], signal?: AbortSignal): Promise<MergedBatch> {
    const t0 = performance.now();
    const { ledger, objects, bucket } = this.deps;
    const result: BatchResult = {
      messages: msgs.length,
      completed: 0,
      failed: 0,
      deadLettered: 0,
      added: 0,
      replaced: 0,
      updated: 0,
      unchanged: 0,
      deleted: 0,
    };
    const q = this.deps.queues[this.c];

    // 1. Parse; unparseable → DLQ with the reason (never dropped). Duplicate deliveries of one message collapse.
    const byId = new Map<string, ParsedMessage>();
    const dlq: { m: QueueMessage; reason: string }[] = [];
    for (const m of msgs) {
      const seen = byId.get(m.id);
      if (seen) {
        seen.raw.push(m);
        continue;
      }
      let parsed: CompactionMessage;
      try {
        parsed = CompactionMessage.parse(JSON.parse(m.body));
      } catch (err) {
        dlq.push({ m, reason: `InvalidMessage: ${errorMessage(err).slice(0, 500)}` });
        continue;
      }
      if (m.attributes.collection && m.attributes.collection !== this.c) {
        dlq.push({
          m,
          reason: `InvalidMessage: collection attribute ${m.attributes.collection} on the ${this.c} queue`,
        });
        continue;
      }
      byId.set(m.id, { raw: [m], msg: parsed });
    }
    // 2. Order: REMOVEs first, then by timestamp (stream order).
    const ordered = [...byId.values()].sort((a, b) => {
      const ra = a.msg.event_name === 'REMOVE' ? 0 : 1;
      const rb = b.msg.event_name === 'REMOVE' ? 0 : 1;
      if (ra !== rb) return ra - rb;
      return a.msg.timestamp < b.msg.timestamp ? -1 : a.msg.timestamp > b.msg.timestamp ? 1 : 0;
    });

    // 3. Plan.
    const runs = new Map<string, { ref: RunRef; order: number }>();
    const touched = new Map<string, { imageId: string; receiptId: number; placeRemoved: boolean }>();
    const deleteIds = new Set<string>();
    const deleteReceipts = new Map<string, { imageId: string; receiptId: number }>();
    const touch = (imageId: string, receiptId: number, placeRemoved = false) => {
      const key = `${imageId}#${receiptId}`;
      const t = touched.get(key) ?? { imageId, receiptId, placeRemoved: false };
      t.placeRemoved ||= placeRemoved;
      touched.set(key, t);
    };
    ordered.forEach(({ msg, raw }, order) => {
      const d = msg.entity_data;
      const imageId = String(d.image_id ?? '');
      const receiptId = Number(d.receipt_id);
      if (!imageId || !Number.isInteger(receiptId) || receiptId < 1) {
        for (const m of raw) dlq.push({ m, reason: 'InvalidMessage: entity_data lacks image_id/receipt_id' });
        byId.delete(raw[0]!.id);
        return;
      }
      switch (msg.entity_type) {
        case 'COMPACTION_RUN':
          if (msg.event_name === 'INSERT' && typeof d.run_id === 'string') {
            runs.set(`${imageId}#${receiptId}#${d.run_id}`, {
              ref: { imageId, receiptId, runId: d.run_id },
              order,
            });
          }
          break;
        case 'RECEIPT_PLACE':
          touch(imageId, receiptId, msg.event_name === 'REMOVE');
          break;
        case 'RECEIPT_WORD_LABEL':
        case 'RECEIPT_SECTION':
          touch(imageId, receiptId);
          break;
        case 'RECEIPT':
          if (msg.event_name === 'REMOVE')
            deleteReceipts.set(`${imageId}#${receiptId}`, { imageId, receiptId });
          break;
        case 'RECEIPT_LINE':
        case 'RECEIPT_WORD': {
          if (msg.event_name !== 'REMOVE') break;
          const p = receiptPrefix(imageId, receiptId);
          const line = `${p}#LINE#${String(Number(d.line_id)).padStart(5, '0')}`;
          if (msg.entity_type === 'RECEIPT_LINE' && this.c === 'lines') deleteIds.add(line);
          if (msg.entity_type === 'RECEIPT_WORD' && this.c === 'words') {
            deleteIds.add(`${line}#WORD#${String(Number(d.word_id)).padStart(5, '0')}`);
          }
          break;
        }
      }
    });
    for (const { m, reason } of dlq) {
      await q.deadLetter(m, reason);
      metrics.dlq.inc({ queue: this.c, reason: reason.split(':')[0]! });
      result.deadLettered++;
      this.log.warn({ messageId: m.id, reason }, 'message dead-lettered');
    }

    // 4. Load runs and their deltas; a bad delta fails only its own run.
    const expectedDim = this.cfg.dimensions ?? (await this.wc.dimension());
    const good: { ref: RunRef; item: CompactionRunItem; records: VectorRecord[] }[] = [];
    const bad: { ref: RunRef; error: string }[] = [];
    // Runs load concurrently (row, download, hash, decode); checks and order stay sequential and deterministic.
    type Loaded = {
      ref: RunRef;
      item?: CompactionRunItem;
      skip?: boolean;
      records?: VectorRecord[];
      header?: { collection: string; dimensions: number };
      error?: string;
    };
    const sortedRuns = [...runs.values()].sort((a, b) => a.order - b.order).map((r) => r.ref);
    const loaded = await mapLimit(sortedRuns, 8, async (ref): Promise<Loaded> => {
      const item = await ledger.getRun(ref.imageId, ref.receiptId, ref.runId);
      if (!item) return { ref, error: 'CompactionRun row not found' };
      const rc = runCollection(item, this.c);
      if (rc.state === 'COMPLETED' || rc.state === 'FAILED') return { ref, skip: true }; // already decided: no-op
      try {
        // Size-checked before download: a delta larger than any receipt's is refused, never buffered.
        const bytes = await objects
          .getBuffer(bucket, rc.deltaKey, { maxBytes: MAX_DELTA_BYTES })
          .catch((err: unknown) => {
            if (err instanceof ObjectTooLargeError)
              throw new PipelineError('DeltaCorrupt', err.message, err.context);
            throw err;
          });
        const { header, records } = decodeDelta(bytes, rc.sha256);
        if (records.length !== rc.vectors) {
          throw new PipelineError(
            'DeltaCorrupt',
            `delta holds ${records.length} vectors, run says ${rc.vectors}`,
          );
        }
        return { ref, item, records, header };
      } catch (err) {
        if (
          err instanceof PipelineError &&
          (err.reason === 'DeltaCorrupt' || err.reason === 'SourceMissing')
        ) {
          return { ref, error: `${err.reason}: ${err.message}` };
        }
        throw err;
      }
    });
    crashPoint('after-download');
    let dim = expectedDim;
    for (const l of loaded) {
      if (l.skip) continue;
      if (l.error !== undefined) {
        bad.push({ ref: l.ref, error: l.error });
        continue;
      }
      const { ref, header, records } = l as Required<Loaded>;
      const why = ((): string | undefined => {
        if (header.collection !== this.c) return `delta is for ${header.collection}, not ${this.c}`;
        if (records.length === 0) return 'delta is empty';
        const d = dim ?? header.dimensions;
        if (header.dimensions !== d || records.some((r) => r.embedding.length !== d)) {
          return `wrong dimension ${header.dimensions}, collection has ${d}`;
        }
        const prefix = `${receiptPrefix(ref.imageId, ref.receiptId)}#`;
        const foreign = records.find((r) => !r.id.startsWith(prefix));
        if (foreign) return `id ${foreign.id} does not belong to receipt ${prefix}`;
        return undefined;
      })();
      if (why) {
        bad.push({ ref, error: `DeltaCorrupt: ${why}` });
        continue;
      }
      dim ??= header.dimensions;
      good.push({ ref, item: l.item!, records });
    }

    const loadMs = performance.now() - t0;
    // 5. Collapse per id (a later run of the same receipt wins), enrich from the ledger.
    const merged = new Map<string, VectorRecord>();
    for (const g of good) for (const r of g.records) merged.set(r.id, r);
    // Receipts whose stored vectors need a metadata recompute: only those named by place/label/section messages
    // (a run's own vectors are enriched below before they are written).
    const recompute = new Set(touched.keys());
    for (const g of good) touch(g.ref.imageId, g.ref.receiptId);
    // Concurrent like the run loads: one receipt's facts are three ledger reads, and a batch touches dozens.
    const facts = new Map<string, ReceiptFacts>(
      await mapLimit(
        [...touched],
        8,
        async ([key, t]) =>
          [key, await loadReceiptFacts(ledger, t.imageId, t.receiptId, t.placeRemoved)] as const,
      ),
    );
    for (const r of merged.values()) {
      const p = /^IMAGE#([^#]+)#RECEIPT#(\d{5})/.exec(r.id)!;
      const f = facts.get(`${p[1]}#${Number(p[2])}`);
      if (f) r.metadata = desiredMetadata(this.c, r.id, r.metadata, f);
    }

    const enrichMs = performance.now() - t0;
    // 6. Apply: deletes (only of entities really gone from the ledger), merges, metadata recomputes.
    signal?.throwIfAborted();
    const pk = (imageId: string) => `IMAGE#${imageId}`;
    const pad = (n: number) => String(n).padStart(5, '0');
    const toDelete = new Set<string>();
    for (const { imageId, receiptId } of deleteReceipts.values()) {
      if (await ledger.getItem({ PK: pk(imageId), SK: `RECEIPT#${pad(receiptId)}` })) continue; // re-created
      for (const id of await this.wc.receiptIds(imageId, receiptId)) toDelete.add(id);
    }
    for (const id of deleteIds) {
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

    const ids = [...merged.keys()];
    const existing = await this.wc.getByIds(ids);
    const toAdd: VectorRecord[] = [];
    const toReplace: VectorRecord[] = [];
    const toUpdate: { id: string; metadata: VectorRecord['metadata'] }[] = [];
    for (const r of merged.values()) {
      const ex = existing.get(r.id);
      if (!ex) toAdd.push(r);
      else if (ex.embedding && sameVector(ex.embedding, r.embedding) && ex.document === r.document) {
        if (sameMetadata(ex.metadata, r.metadata)) result.unchanged++;
        else if (keepsKeys(ex.metadata, r.metadata))
          toUpdate.push({ id: r.id, metadata: stored(r.metadata) });
        else toReplace.push(r);
      } else toReplace.push(r);
    }
    // Receipts touched by place/label/section changes: recompute the metadata of their stored vectors too.
    const stale = await mapLimit([...recompute], 4, async (key) => {
      const t = touched.get(key)!;
      const others = (await this.wc.receiptIds(t.imageId, t.receiptId)).filter((id) => !merged.has(id));
      return {
        f: facts.get(key)!,
        current: others.length ? await this.wc.getByIds(others) : new Map(),
      };
    });
    for (const { f, current } of stale) {
      for (const ex of current.values()) {
        const want = desiredMetadata(this.c, ex.id, ex.metadata, f);
        if (sameMetadata(ex.metadata, want)) continue;
        if (keepsKeys(ex.metadata, want)) toUpdate.push({ id: ex.id, metadata: stored(want) });
        else toReplace.push({ id: ex.id, document: ex.document, metadata: want, embedding: ex.embedding! });
      }
    }
    if (toReplace.length) await this.wc.delete(toReplace.map((r) => r.id));
    const adds = [...toReplace, ...toAdd];
    const half = Math.ceil(adds.length / 2);
    await this.wc.add(adds.slice(0, half));
    if (adds.length) crashPoint('mid-upsert');
    await this.wc.add(adds.slice(half));
    await this.wc.updateMetadata(toUpdate);
    result.added = toAdd.length;
    result.replaced = toReplace.length;
    result.updated = toUpdate.length;

    const applyMs = performance.now() - t0;
    // 7. Verify every merged id is present before anything is published or marked.
    const present = await this.wc.presentIds(ids);
    if (present.size !== ids.length) {
      const missing = ids.filter((id) => !present.has(id));
      throw new TransientError(`${missing.length} merged id(s) missing after the merge, e.g. ${missing[0]}`);
    }
    const mergeMs = performance.now() - t0;
    metrics.mergeSeconds.observe({ collection: this.c }, mergeMs / 1000);

    const r = Math.round;
    return {
      result,
      ids,
      good,
      bad,
      raw: [...byId.values()].flatMap((p) => p.raw),
      ms: { load: r(loadMs), enrich: r(enrichMs), apply: r(applyMs), merge: r(mergeMs) },
    };
  }

  /** Steps 8–10 for merged batches: one publish (if anything changed), runs decided, messages deleted. */
  private async commit(parts: MergedBatch[]): Promise<BatchResult> {
    const t0 = performance.now();
    const { ledger } = this.deps;
    const q = this.deps.queues[this.c];
    const result = parts.reduce(
      (sum, p) => {
        for (const k of COUNTS) sum[k] += p.result[k];
        return sum;
      },
      { ...parts[0]!.result, ...Object.fromEntries(COUNTS.map((k) => [k, 0])) } as BatchResult,
    );
    const ids = [...new Set(parts.flatMap((p) => p.ids))];
    const good = parts.flatMap((p) => p.good);
    const bad = parts.flatMap((p) => p.bad);

    // 8. Publish when something changed; otherwise the live version already holds every merged id.
    const changed = result.deleted + result.added + result.replaced + result.updated > 0;
    if (changed) result.published = await this.publish(ids);
    for (const [how, n] of [
      ['added', result.added],
      ['replaced', result.replaced],
      ['unchanged', result.unchanged],
    ] as const) {
      if (n) metrics.merged.inc({ collection: this.c, how }, n);
    }

    // 9. Decide the runs: COMPLETED with merged counts, FAILED with the reason (never COMPLETED with zero vectors).
    await mapLimit(good, 8, async (g) => {
      await ledger.setRunCollection(g.ref, this.c, { state: 'COMPLETED', mergedVectors: g.records.length });
      result.completed++;
      metrics.runs.inc({ collection: this.c, state: 'COMPLETED' });
      const created = Date.parse(g.item.created_at);
      if (Number.isFinite(created))
        metrics.lag.observe({ collection: this.c }, (Date.now() - created) / 1000);
    });
    await mapLimit(bad, 8, async (b) => {
      await ledger.setRunCollection(b.ref, this.c, { state: 'FAILED', error: b.error.slice(0, 1000) });
      result.failed++;
      metrics.runs.inc({ collection: this.c, state: 'FAILED' });
      this.log.warn({ runId: b.ref.runId, error: b.error }, 'run FAILED');
    });
    crashPoint('after-mark');

    // 10. Only now are the messages done.
    await mapLimit(
      parts.flatMap((p) => p.raw),
      8,
      (m) => q.delete(m.handle),
    );
    // Housekeeping after the runs are decided, off their path to COMPLETED (neither step throws).
    if (result.published) {
      await this.prune();
      await this.flushS3(false);
    }
    // Merge timings per batch; each is the time since that batch began when the step ended (load, enrich, apply,
    // verify = merge); commitMs: publish, marking, deleting.
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
   * fence → switch CURRENT. Chroma never runs on the shared volume (slow and unsafe on NFS), and each publish loads
   * the index once (the working server needs it anyway).
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
    crashPoint('after-copy');
    const copyMs = performance.now() - t0 - stopMs;
    await rename(staging, versionDir(root, this.c, version));
    await fsyncDir(versionsDir(root, this.c));
    crashPoint('before-switch');
    await this.owner.fence(this.c);
    await switchCurrent(root, this.c, version);
    crashPoint('after-switch');
    this.base = version;
    this.unmirrored = version;
    this.publishesSinceUpload++;
    const seconds = (performance.now() - t0) / 1000;
    metrics.publishSeconds.observe({ collection: this.c }, seconds);
    metrics.publishes.inc({ collection: this.c });
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
      metrics.versions.set({ collection: this.c }, (await listVersions(root, this.c)).length);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'prune failed');
    }
  }

  /** Uploads the live version to S3 when due (or `force`), then trims S3 to the newest K. Serialized per lane. */
  async flushS3(force: boolean): Promise<void> {
    const version = this.unmirrored;
    if (!version) return;
    const due =
      force ||
      this.publishesSinceUpload >= this.cfg.s3EveryPublishes ||
      Date.now() - this.lastUpload >= this.cfg.s3EverySeconds * 1000;
    if (!due) return;
    this.unmirrored = undefined;
    this.publishesSinceUpload = 0;
    this.lastUpload = Date.now();
    const { objects, bucket, root } = this.deps;
    const job = this.upload.then(async () => {
      try {
        await uploadSnapshot(objects, bucket, this.c, version, versionDir(root, this.c, version));
        metrics.s3Uploads.inc({ collection: this.c });
        this.log.info({ version }, 'S3 snapshot uploaded');
        await this.trimS3(version);
      } catch (err) {
        this.unmirrored ??= version;
        this.log.error({ err: errorMessage(err), version }, 'S3 snapshot upload failed; will retry');
      }
    });
    this.upload = job;
    if (force) await job;
  }

  private async trimS3(pointed: string): Promise<void> {
    const { objects, bucket } = this.deps;
    const prefix = `${this.c}/snapshot/timestamped/`;
    const objs = await objects.list(bucket, prefix);
    const versions = [...new Set(objs.map((o) => o.key.slice(prefix.length).split('/')[0]!))].sort();
    const keep = new Set([...versions.slice(-this.cfg.s3Keep), pointed]);
    for (const o of objs) {
      const v = o.key.slice(prefix.length).split('/')[0]!;
      if (!keep.has(v) && o.key !== pointerKey(this.c) && o.key !== archiveKey(this.c, pointed))
        await objects.delete(bucket, o.key);
    }
  }
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

export { collectionDir };

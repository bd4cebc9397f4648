import { setTimeout as sleep } from 'node:timers/promises';
import { compactionAttributes } from '../core/contracts/compaction-message.js';
import { runCollections, type CompactionRunItem } from '../core/contracts/compaction-run.js';
import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import type { ChangeRecord, Item, Ledger } from '../core/ports/ledger.js';
import type { OutgoingMessage, Queue } from '../core/ports/queue.js';
import { detect, type Outgoing } from './change-detection.js';
import { StreamMetrics } from './metrics.js';

/**
 * Re-announces CompactionRuns left PENDING: a run whose INSERT fell into a stream gap (the stream processor was
 * down longer than the 24 h retention, or its checkpoint restarted at TRIM_HORIZON) was never announced, and
 * nothing else would ever queue it. Every `intervalMs` the sweeper lists runs with a collection still PENDING and
 * `created_at` older than `afterMs`, and sends, for each such collection, exactly the message the stream processor
 * sends for that run's INSERT (`detect` on a synthetic INSERT record; only `stream_record_id` and `timestamp`
 * differ). That is safe: the compactor treats a COMPLETED/FAILED run as a no-op and collapses duplicates. A run
 * (collection) is re-announced at most once per `afterMs` by this process, so a slow compactor is not flooded.
 * Leader-only (it runs inside the stream processor's runnable). Every ledger read and send has a deadline.
 */
export interface PendingRunSweeperDeps {
  ledger: Pick<Ledger, 'pendingRuns'>;
  queues: Record<Collection, Queue>;
  log: Logger;
  /** How often to sweep, ms (default 10 min); the first sweep comes one interval after start. */
  intervalMs?: number;
  /** A run is swept once it has been PENDING (since `created_at`) this long, ms (default 30 min). */
  afterMs?: number;
  /** Runs per sweep (default 500). */
  limit?: number;
  /** Deadline of each ledger read and each send, ms (default 30 s). */
  timeoutMs?: number;
  /** `aws_region` of the messages, as the stream's records carry it. */
  region?: string;
  now?: () => number;
  /** Default: a private registry. */
  metrics?: StreamMetrics;
}

export interface SweepResult {
  /** Runs with at least one collection re-announced. */
  runs: number;
  messages: number;
}

/** The messages the stream processor sends for `run`'s INSERT, for the collections still PENDING. */
export function announcementOf(
  run: CompactionRunItem,
  opts: { timestamp: string; recordId: string; region?: string },
): Outgoing[] {
  const record: ChangeRecord = {
    id: opts.recordId,
    eventName: 'INSERT',
    keys: { PK: run.PK, SK: run.SK },
    newImage: run as unknown as Item,
    ...(opts.region ? { region: opts.region } : {}),
  };
  const pending = new Set(
    runCollections(run).filter((c) => (run as Record<string, unknown>)[`${c}_state`] === 'PENDING'),
  );
  return detect(record, opts.timestamp).messages.filter((m) => pending.has(m.collection));
}

export class PendingRunSweeper {
  /** `{PK}|{SK}|{collection}` → when this process last re-announced it. */
  private readonly swept = new Map<string, number>();
  private lastTimestamp = 0;
  private readonly metrics: StreamMetrics;

  constructor(private readonly deps: PendingRunSweeperDeps) {
    this.metrics = deps.metrics ?? new StreamMetrics();
  }

  get intervalMs(): number {
    return this.deps.intervalMs ?? 600_000;
  }

  get afterMs(): number {
    return this.deps.afterMs ?? 1_800_000;
  }

  /** Sweeps every `intervalMs` until the signal aborts; a failed sweep is logged and the next one tries again. */
  async run(signal: AbortSignal): Promise<void> {
    this.deps.log.info({ intervalMs: this.intervalMs, afterMs: this.afterMs }, 'pending-run sweeper started');
    while (!signal.aborted) {
      await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        await this.sweepOnce(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.deps.log.warn({ err }, 'pending-run sweep failed; the next sweep retries');
      }
    }
    this.deps.log.info('pending-run sweeper stopped');
  }

  /** One sweep: list old PENDING runs, send their messages, count them. */
  async sweepOnce(signal?: AbortSignal): Promise<SweepResult> {
    const now = this.now();
    const timeoutMs = this.deps.timeoutMs ?? 30_000;
    const limit = this.deps.limit ?? 500;
    const readSignal = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs);
    const runs = await withDeadline(
      this.deps.ledger.pendingRuns(new Date(now - this.afterMs), limit, { signal: readSignal }),
      timeoutMs,
      'list pending runs',
    );
    if (runs.length >= limit) {
      this.deps.log.warn(
        { limit },
        'more pending runs than one sweep takes; the rest wait for the next sweep',
      );
    }
    const perQueue: Record<Collection, { key: string; run: CompactionRunItem; message: OutgoingMessage }[]> =
      {
        lines: [],
        words: [],
      };
    const seen = new Set<string>();
    for (const run of runs) {
      const outgoing = announcementOf(run, {
        timestamp: this.timestamp(now),
        recordId: `sweep-${run.run_id}-${now}`,
        ...(this.deps.region ? { region: this.deps.region } : {}),
      });
      for (const { collection, message } of outgoing) {
        const key = `${run.PK}|${run.SK}|${collection}`;
        seen.add(key);
        const last = this.swept.get(key);
        if (last !== undefined && now - last < this.afterMs) continue; // announced recently: give it time
        perQueue[collection].push({
          key,
          run,
          message: { body: JSON.stringify(message), attributes: compactionAttributes(message, collection) },
        });
      }
    }
    // Forget runs that are no longer pending (or fell out of this sweep), so the map stays bounded.
    for (const key of this.swept.keys()) if (!seen.has(key)) this.swept.delete(key);

    const announced = new Map<string, { run: CompactionRunItem; collections: Collection[] }>();
    let messages = 0;
    let firstErr: unknown;
    for (const c of ['lines', 'words'] as const) {
      const batch = perQueue[c];
      if (batch.length === 0) continue;
      signal?.throwIfAborted();
      try {
        await withDeadline(
          this.deps.queues[c].send(batch.map((b) => b.message)),
          timeoutMs,
          `send ${batch.length} message(s) to ${c}`,
        );
      } catch (err) {
        // The runs stay PENDING: the next sweep sends them again. The other queue still gets its messages.
        this.deps.log.warn({ err, collection: c, runs: batch.length }, 'sweep send failed');
        firstErr ??= err;
        continue;
      }
      messages += batch.length;
      this.metrics.sweptRuns.inc({ collection: c }, batch.length);
      for (const { key, run } of batch) {
        this.swept.set(key, now);
        const id = `${run.PK}|${run.SK}`;
        const entry = announced.get(id) ?? { run, collections: [] };
        entry.collections.push(c);
        announced.set(id, entry);
      }
    }
    for (const { run, collections } of announced.values()) {
      this.deps.log.info(
        {
          runId: run.run_id,
          imageId: run.image_id,
          receiptId: run.receipt_id,
          collections,
          createdAt: run.created_at,
          ...(run.job_name ? { ej: run.job_name } : {}),
        },
        'pending run re-announced (its stream record was missed)',
      );
    }
    if (firstErr !== undefined && messages === 0) throw firstErr;
    return { runs: announced.size, messages };
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Strictly increasing ISO timestamps, as the stream processor gives its messages. */
  private timestamp(now: number): string {
    const t = Math.max(now, this.lastTimestamp + 1);
    this.lastTimestamp = t;
    return new Date(t).toISOString();
  }
}

async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      p,
      sleep(ms, undefined, { signal: ac.signal }).then(() => {
        throw new Error(`${what}: no answer within ${ms} ms`);
      }),
    ]);
  } finally {
    ac.abort();
  }
}

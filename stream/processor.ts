import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../core/backoff.js';
import { compactionAttributes } from '../core/contracts/compaction-message.js';
import type { Collection } from '../core/contracts/ids.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ChangeFeed } from '../core/ports/ledger.js';
import type { OutgoingMessage, Queue } from '../core/ports/queue.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import { detect, type CompactionReport } from './change-detection.js';
import type { JobStatusSink } from './job-status.js';
import { StreamMetrics } from './metrics.js';

/**
 * Stream processor: ledger changes → LINES/WORDS messages (+ compaction results → EmbeddingJobs). A batch's
 * checkpoint is committed only after every message of it was accepted by its queue and every report recorded, so a
 * crash replays the batch (duplicates are harmless: the compactor is idempotent per id and per run). Failed sends
 * are retried with backoff until they succeed or the processor is stopped — never dropped
 * (docs/adr/0002-at-least-once-delete.md).
 */
export interface StreamProcessorDeps {
  feed: ChangeFeed;
  queues: Record<Collection, Queue>;
  sink?: JobStatusSink;
  log: Logger;
  batchLimit?: number;
  /** Backoff cap for retried sends/reports (default 30 s). */
  maxBackoffMs?: number;
  /** Default: a private registry. */
  metrics?: StreamMetrics;
  /** Fault injection (core/testing/crash-points.ts): called at named steps. */
  hooks?: Pick<CrashHooks, 'step'>;
}

export class StreamProcessor {
  private lastTimestamp = 0;
  private readonly metrics: StreamMetrics;

  constructor(private readonly deps: StreamProcessorDeps) {
    this.metrics = deps.metrics ?? new StreamMetrics();
  }

  /** Runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.deps.log.info('stream processor started');
    while (!signal.aborted) {
      try {
        await this.runOnce(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (isFenced(err)) {
          // Deposed: the checkpoint store refuses to write, so nothing more may be handled here.
          this.deps.log.error({ err }, 'stream processor lost leadership; stopping');
          break;
        }
        // Reading failed (the feed keeps its position): back off and read again.
        this.deps.log.warn({ err }, 'stream read failed; retrying');
        await sleep(1000, undefined, { signal }).catch(() => undefined);
      }
    }
    await this.deps.feed.close();
    this.deps.log.info('stream processor stopped');
  }

  /** Reads one batch, sends its messages, records its reports, commits. Returns the number of records. */
  async runOnce(signal?: AbortSignal): Promise<number> {
    const { records, commit } = await this.deps.feed.next({ limit: this.deps.batchLimit ?? 100, signal });
    if (records.length === 0) {
      await commit();
      return 0;
    }
    this.deps.hooks?.step?.('stream-after-read');
    const perQueue: Record<Collection, OutgoingMessage[]> = { lines: [], words: [] };
    const reports: CompactionReport[] = [];
    const counts: { collection: Collection; type: string }[] = [];
    for (const record of records) {
      this.metrics.records.inc({ event: record.eventName });
      const d = detect(record, this.timestamp());
      for (const { collection, message } of d.messages) {
        perQueue[collection].push({
          body: JSON.stringify(message),
          attributes: compactionAttributes(message, collection),
        });
        counts.push({ collection, type: message.entity_type });
      }
      reports.push(...d.reports);
    }
    for (const c of ['lines', 'words'] as const) {
      if (perQueue[c].length === 0) continue;
      await this.retrying(
        `send ${perQueue[c].length} message(s) to ${c}`,
        () => this.deps.queues[c].send(perQueue[c]),
        signal,
      );
      this.deps.hooks?.step?.(`stream-after-send-${c}`);
    }
    for (const { collection, type } of counts) this.metrics.messages.inc({ collection, entity_type: type });
    if (this.deps.sink) {
      for (const r of reports) {
        await this.retrying(
          `report ${r.collection} ${r.state} to ${r.jobName}`,
          () => this.deps.sink!.report(r),
          signal,
        );
        this.metrics.reports.inc({ state: r.state });
      }
    }
    await this.retrying('commit checkpoint', commit, signal);
    this.metrics.lastCommit.setToCurrentTime();
    this.deps.log.debug(
      { records: records.length, lines: perQueue.lines.length, words: perQueue.words.length },
      'stream batch committed',
    );
    return records.length;
  }

  private async retrying(what: string, fn: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        await fn();
        return;
      } catch (err) {
        if (isFenced(err)) throw err; // not ours to write any more: never retried
        this.metrics.sendRetries.inc();
        const delay = backoffMs(attempt, { baseMs: 200, maxMs: this.deps.maxBackoffMs ?? 30_000 });
        this.deps.log.warn({ err, attempt, delayMs: delay }, `${what} failed; retrying`);
        await sleep(delay, undefined, { signal });
      }
    }
  }

  /** Strictly increasing ISO timestamps, so the compactor's secondary sort keeps stream order within a batch. */
  private timestamp(): string {
    const now = Math.max(Date.now(), this.lastTimestamp + 1);
    this.lastTimestamp = now;
    return new Date(now).toISOString();
  }
}

/** A commit refused because this process no longer leads (CheckpointFencedError and other LeaseLost errors). */
function isFenced(err: unknown): boolean {
  return err instanceof PipelineError && err.reason === 'LeaseLost';
}

import { runCollection } from '../core/contracts/compaction-run.js';
import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';
import { reasonKind, runOf, stillOpen } from './give-up.js';
import type { CompactorMetrics } from './metrics.js';

/** How a message leaves for the DLQ (which ones, and why, is compactor/give-up.ts). */
export class DeadLetters {
  constructor(
    private readonly c: Collection,
    private readonly queue: () => Queue,
    private readonly ledger: Ledger,
    /** The message is settled: no longer kept invisible. */
    private readonly release: (msgs: QueueMessage[]) => void,
    private readonly log: Logger,
    private readonly metrics: CompactorMetrics,
  ) {}

  /** To the DLQ with the reason, never dropped. */
  async deadLetter(m: QueueMessage, reason: string): Promise<void> {
    await this.queue().deadLetter(m, reason);
    this.release([m]);
    this.metrics.dlq.inc({ queue: this.c, reason: reasonKind(reason) });
    this.log.warn({ messageId: m.id, reason }, 'message dead-lettered');
  }

  /**
   * A run's message given up on (CrashLoop, RepeatedFailure) FAILs the run for this collection with the reason, so
   * its job reports it and the PENDING sweep does not announce it again.
   */
  async giveUp(m: QueueMessage, reason: string): Promise<void> {
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
      const item = await this.ledger.getRun(ref.imageId, ref.receiptId, ref.runId);
      if (stillOpen(item ? runCollection(item, this.c) : undefined))
        await this.ledger.setRunCollection(ref, this.c, {
          state: 'FAILED',
          error: reason.slice(0, 1000),
        });
    } catch (err) {
      this.log.warn({ err, runId: ref.runId }, 'could not mark the run FAILED');
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/log.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';

export interface BatchReceiveOptions {
  /** Long-poll wait of the first receive. */
  waitSeconds: number;
  /** After the first message arrives, keep receiving for up to this long to fill the batch. */
  windowMs: number;
  batchSize: number;
  visibilitySeconds: number;
}

/** Receives up to batchSize messages: one long poll, then more for up to the batch window. */
export async function receiveBatch(
  q: Queue,
  opts: BatchReceiveOptions,
  signal: AbortSignal,
  log: Logger,
): Promise<QueueMessage[]> {
  const vis = opts.visibilitySeconds;
  const out = await q.receive({
    maxMessages: 10,
    waitSeconds: opts.waitSeconds,
    visibilitySeconds: vis,
    signal,
  });
  if (out.length === 0) return out;
  const windowEnd = Date.now() + opts.windowMs;
  while (out.length < opts.batchSize && Date.now() < windowEnd && !signal.aborted) {
    let more: QueueMessage[];
    try {
      more = await q.receive({
        maxMessages: Math.min(10, opts.batchSize - out.length),
        waitSeconds: 0,
        visibilitySeconds: vis,
        signal,
      });
    } catch (err) {
      // A throttled fill-up receive ends the window; what we already hold is processed now.
      log.warn({ err }, 'receive failed while filling the batch');
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

import { CompactionMessage } from '../core/contracts/compaction-message.js';
import type { RunCollection } from '../core/contracts/compaction-run.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import type { QueueMessage } from '../core/ports/queue.js';
import type { RunRef } from './plan.js';

/** When a message is given up on (dead-lettered) and with what reason, decided from what is known (pure). */

/** A message in whose batch the process died too often (compactor/isolation.ts decides which). */
export function crashLoopReason(d: { deaths: number; alone: number }): string {
  return `CrashLoop: the compactor died ${d.deaths} times with this message in its batch, ${d.alone} times with it alone`;
}

/** What a failed attempt is reported as: a typed failure's reason first. */
export function failureReason(err: unknown): string {
  return err instanceof PipelineError ? `${err.reason}: ${err.message}` : errorMessage(err);
}

/** A failed message received `maxReceives` times is given up on (the reason returned); before that it is retried. */
export function repeatedFailure(
  m: Pick<QueueMessage, 'receiveCount'>,
  maxReceives: number,
  reason: string,
): string | undefined {
  if (m.receiveCount < maxReceives) return undefined;
  return `RepeatedFailure: failed ${m.receiveCount} times; last: ${reason}`;
}

/** The leading words of the reasons above and of compactor/plan.ts's: the DLQ metric's `reason` label values. */
export const DLQ_REASON_KINDS = ['InvalidMessage', 'CrashLoop', 'RepeatedFailure'] as const;

/** The DLQ metric's label: the reason's leading word (`CrashLoop`, `InvalidMessage`, …). */
export const reasonKind = (reason: string): string => reason.split(':')[0]!;

/** The run a message announces, if it is a CompactionRun INSERT: the run FAILed when the message is given up on. */
export function runOf(m: Pick<QueueMessage, 'body'>): RunRef | undefined {
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

/** Only a run that carries this collection and has not been decided is FAILed: never a field the row does not have. */
export const stillOpen = (rc: RunCollection | undefined): boolean =>
  rc !== undefined && rc.state !== 'COMPLETED' && rc.state !== 'FAILED';

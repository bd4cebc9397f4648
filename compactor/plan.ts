import { CompactionMessage } from '../core/contracts/compaction-message.js';
import { receiptPrefix, type Collection } from '../core/contracts/ids.js';
import { errorMessage } from '../core/errors.js';
import type { QueueMessage } from '../core/ports/queue.js';

export interface RunRef {
  imageId: string;
  receiptId: number;
  runId: string;
}

export interface ParsedMessage {
  /** Every delivery of this message id in the batch (duplicates collapse). */
  raw: QueueMessage[];
  msg: CompactionMessage;
}

export interface Touched {
  imageId: string;
  receiptId: number;
  placeRemoved: boolean;
}

/** What a batch asks for, decided from the message bodies alone (pure: no ledger, no Chroma). */
export interface BatchPlan {
  /** Valid messages, in processing order. */
  parsed: ParsedMessage[];
  /** Messages that can never be processed, with the reason. */
  dlq: { m: QueueMessage; reason: string }[];
  /** CompactionRun INSERTs, in processing order. */
  runs: RunRef[];
  /** Receipts whose ledger-derived metadata must be recomputed (place/label/section changes). */
  touched: Map<string, Touched>;
  /** Line/word vector ids announced as removed. */
  deleteIds: Set<string>;
  /** Receipts announced as removed, with the time of the removal (stream order). */
  deleteReceipts: Map<string, { imageId: string; receiptId: number; at: string }>;
}

export const receiptKey = (imageId: string, receiptId: number) => `${imageId}#${receiptId}`;

/**
 * Steps 1–3 of a batch: parse (unparseable → DLQ with the reason, never dropped; duplicate deliveries of one
 * message collapse), order by timestamp (stream order: a later run of a receipt wins) and plan. Deletes need no place
 * in that order: the lane applies every delete of a batch before any of its runs.
 */
export function planBatch(msgs: QueueMessage[], c: Collection): BatchPlan {
  const byId = new Map<string, ParsedMessage>();
  const dlq: BatchPlan['dlq'] = [];
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
    if (m.attributes.collection && m.attributes.collection !== c) {
      dlq.push({
        m,
        reason: `InvalidMessage: collection attribute ${m.attributes.collection} on the ${c} queue`,
      });
      continue;
    }
    byId.set(m.id, { raw: [m], msg: parsed });
  }
  const ordered = [...byId.values()].sort((a, b) => byTime(a.msg.timestamp, b.msg.timestamp));

  const plan: BatchPlan = {
    parsed: [],
    dlq,
    runs: [],
    touched: new Map(),
    deleteIds: new Set(),
    deleteReceipts: new Map(),
  };
  const runs = new Set<string>();
  for (const p of ordered) {
    const { msg, raw } = p;
    const d = msg.entity_data;
    const imageId = String(d.image_id ?? '');
    const receiptId = Number(d.receipt_id);
    if (!imageId || !Number.isInteger(receiptId) || receiptId < 1) {
      for (const m of raw) dlq.push({ m, reason: 'InvalidMessage: entity_data lacks image_id/receipt_id' });
      continue;
    }
    plan.parsed.push(p);
    const key = receiptKey(imageId, receiptId);
    switch (msg.entity_type) {
      case 'COMPACTION_RUN':
        if (msg.event_name === 'INSERT' && typeof d.run_id === 'string' && !runs.has(`${key}#${d.run_id}`)) {
          runs.add(`${key}#${d.run_id}`);
          plan.runs.push({ imageId, receiptId, runId: d.run_id });
        }
        break;
      case 'RECEIPT_PLACE':
        touch(plan, imageId, receiptId, msg.event_name === 'REMOVE');
        break;
      case 'RECEIPT_WORD_LABEL':
      case 'RECEIPT_SECTION':
        touch(plan, imageId, receiptId);
        break;
      case 'RECEIPT':
        if (msg.event_name === 'REMOVE')
          plan.deleteReceipts.set(key, { imageId, receiptId, at: msg.timestamp });
        break;
      case 'RECEIPT_LINE':
      case 'RECEIPT_WORD': {
        if (msg.event_name !== 'REMOVE') break;
        const line = `${receiptPrefix(imageId, receiptId)}#LINE#${pad(Number(d.line_id))}`;
        if (msg.entity_type === 'RECEIPT_LINE' && c === 'lines') plan.deleteIds.add(line);
        if (msg.entity_type === 'RECEIPT_WORD' && c === 'words')
          plan.deleteIds.add(`${line}#WORD#${pad(Number(d.word_id))}`);
        break;
      }
    }
  }
  return plan;
}

export function touch(
  plan: Pick<BatchPlan, 'touched'>,
  imageId: string,
  receiptId: number,
  placeRemoved = false,
) {
  const key = receiptKey(imageId, receiptId);
  const t = plan.touched.get(key) ?? { imageId, receiptId, placeRemoved: false };
  t.placeRemoved ||= placeRemoved;
  plan.touched.set(key, t);
}

const pad = (n: number) => String(n).padStart(5, '0');

/**
 * Stream order by instant: the original's stream processor wrote `…T12:00:00.123456+00:00`, this project's
 * `…T12:00:00.123Z`, and during a cut-over both arrive in one batch. Unparseable or equal to the millisecond: by text.
 */
function byTime(a: string, b: string): number {
  const d = Date.parse(a) - Date.parse(b);
  if (d) return d;
  return a < b ? -1 : a > b ? 1 : 0;
}

import { describe, expect, it } from 'vitest';
import type { Collection } from '../../../core/contracts/ids.js';
import type { QueueMessage } from '../../../core/ports/queue.js';
import { planBatch } from '../../../compactor/plan.js';

const IMG = '3f2a1b4c-0000-4000-8000-000000000001';
let seq = 0;
/** A queue message carrying a stream change; `id` is the SQS message id (duplicate deliveries share it). */
function msg(
  entity_type: string,
  event_name: string,
  data: Record<string, unknown> = {},
  { id = `m${++seq}`, timestamp = '2026-01-01T00:00:00Z', attributes = {} as Record<string, string> } = {},
): QueueMessage {
  const body = JSON.stringify({
    source: 'dynamodb_stream',
    entity_type,
    event_name,
    entity_data: { image_id: IMG, receipt_id: 1, ...data },
    timestamp,
    stream_record_id: `s-${id}`,
  });
  return { id, handle: `h-${id}-${++seq}`, body, receiveCount: 1, attributes };
}

const LINE = `IMAGE#${IMG}#RECEIPT#00001#LINE#00002`;

describe('planning a batch from its message bodies', () => {
  it.each<{
    name: string;
    c?: Collection;
    msgs: () => QueueMessage[];
    want: {
      runs?: string[];
      touched?: Record<string, boolean>;
      deleteIds?: string[];
      deleteReceipts?: string[];
      dlq?: string[];
      parsed?: number;
    };
  }>([
    {
      name: 'a CompactionRun INSERT is a run to merge',
      msgs: () => [msg('COMPACTION_RUN', 'INSERT', { run_id: 'r1' })],
      want: { runs: ['r1'], parsed: 1 },
    },
    {
      name: 'a CompactionRun MODIFY (or one without a run id) merges nothing',
      msgs: () => [msg('COMPACTION_RUN', 'MODIFY', { run_id: 'r1' }), msg('COMPACTION_RUN', 'INSERT')],
      want: { runs: [], parsed: 2 },
    },
    {
      name: 'the same run announced twice is merged once',
      msgs: () => [
        msg('COMPACTION_RUN', 'INSERT', { run_id: 'r1' }),
        msg('COMPACTION_RUN', 'INSERT', { run_id: 'r1' }),
      ],
      want: { runs: ['r1'], parsed: 2 },
    },
    {
      name: 'runs come in stream (timestamp) order, not arrival order',
      msgs: () => [
        msg('COMPACTION_RUN', 'INSERT', { run_id: 'late' }, { timestamp: '2026-01-01T00:00:02Z' }),
        msg('COMPACTION_RUN', 'INSERT', { run_id: 'early' }, { timestamp: '2026-01-01T00:00:01Z' }),
      ],
      want: { runs: ['early', 'late'] },
    },
    {
      name: 'place, label and section changes touch their receipt; a place REMOVE says so',
      msgs: () => [
        msg('RECEIPT_PLACE', 'REMOVE'),
        msg('RECEIPT_WORD_LABEL', 'INSERT', { receipt_id: 2 }),
        msg('RECEIPT_SECTION', 'MODIFY', { receipt_id: 3 }),
        msg('RECEIPT_PLACE', 'INSERT', { receipt_id: 3 }),
      ],
      want: { touched: { [`${IMG}#1`]: true, [`${IMG}#2`]: false, [`${IMG}#3`]: false } },
    },
    {
      name: 'a place REMOVE sticks to its receipt whatever touches it after',
      msgs: () => [msg('RECEIPT_PLACE', 'REMOVE'), msg('RECEIPT_WORD_LABEL', 'INSERT')],
      want: { touched: { [`${IMG}#1`]: true } },
    },
    {
      name: 'a receipt REMOVE deletes the receipt; its INSERT does nothing',
      msgs: () => [
        msg('RECEIPT', 'REMOVE', {}, { timestamp: 't1' }),
        msg('RECEIPT', 'INSERT', { receipt_id: 2 }),
      ],
      want: { deleteReceipts: [`${IMG}#1@t1`] },
    },
    {
      name: 'lines: a line REMOVE deletes its vector, a word REMOVE does not',
      c: 'lines',
      msgs: () => [
        msg('RECEIPT_LINE', 'REMOVE', { line_id: 2 }),
        msg('RECEIPT_WORD', 'REMOVE', { line_id: 2, word_id: 3 }),
      ],
      want: { deleteIds: [LINE] },
    },
    {
      name: 'words: a word REMOVE deletes its vector, a line REMOVE does not',
      c: 'words',
      msgs: () => [
        msg('RECEIPT_LINE', 'REMOVE', { line_id: 2 }),
        msg('RECEIPT_WORD', 'REMOVE', { line_id: 2, word_id: 3 }),
      ],
      want: { deleteIds: [`${LINE}#WORD#00003`] },
    },
    {
      name: 'a line or word MODIFY deletes nothing',
      msgs: () => [msg('RECEIPT_LINE', 'MODIFY', { line_id: 2 })],
      want: { deleteIds: [], parsed: 1 },
    },
    {
      name: 'duplicate deliveries of one message collapse into one',
      msgs: () => {
        const m = msg('COMPACTION_RUN', 'INSERT', { run_id: 'r1' }, { id: 'dup' });
        return [m, { ...m, handle: 'h-dup-2' }];
      },
      want: { runs: ['r1'], parsed: 1 },
    },
    {
      name: 'an unparseable body goes to the DLQ with the reason',
      msgs: () => [{ ...msg('RECEIPT', 'REMOVE'), body: 'not json' }, msg('RECEIPT_SECTION', 'UPSERT')],
      want: { dlq: ['InvalidMessage: ', 'InvalidMessage: '], parsed: 0 },
    },
    {
      name: 'a message sent for the other collection goes to the DLQ',
      c: 'lines',
      msgs: () => [msg('RECEIPT', 'REMOVE', {}, { attributes: { collection: 'words' } })],
      want: { dlq: ['InvalidMessage: collection attribute words on the lines queue'], deleteReceipts: [] },
    },
    {
      name: 'entity data without an image or a valid receipt id goes to the DLQ, every delivery of it',
      msgs: () => {
        const m = msg('RECEIPT', 'REMOVE', { receipt_id: 0 }, { id: 'bad' });
        return [m, { ...m, handle: 'h-bad-2' }, msg('RECEIPT', 'REMOVE', { image_id: '' })];
      },
      want: {
        dlq: Array(3).fill('InvalidMessage: entity_data lacks image_id/receipt_id') as string[],
        parsed: 0,
      },
    },
  ])('$name', ({ c = 'lines', msgs, want }) => {
    const plan = planBatch(msgs(), c);
    if (want.runs) expect(plan.runs.map((r) => r.runId)).toEqual(want.runs);
    if (want.touched)
      expect(Object.fromEntries([...plan.touched].map(([k, t]) => [k, t.placeRemoved]))).toEqual(
        want.touched,
      );
    if (want.deleteIds) expect([...plan.deleteIds]).toEqual(want.deleteIds);
    if (want.deleteReceipts)
      expect([...plan.deleteReceipts].map(([k, d]) => `${k}@${d.at}`)).toEqual(want.deleteReceipts);
    if (want.dlq) {
      expect(plan.dlq).toHaveLength(want.dlq.length);
      plan.dlq.forEach((d, i) => expect(d.reason.startsWith(want.dlq![i]!)).toBe(true));
    } else expect(plan.dlq).toEqual([]);
    if (want.parsed !== undefined) expect(plan.parsed).toHaveLength(want.parsed);
  });

  it('runs keep the receipt they belong to', () => {
    const plan = planBatch([msg('COMPACTION_RUN', 'INSERT', { run_id: 'r9', receipt_id: '4' })], 'words');
    expect(plan.runs).toEqual([{ imageId: IMG, receiptId: 4, runId: 'r9' }]);
  });

  it('a parsed message keeps every delivery of it, so each is deleted when the batch commits', () => {
    const m = msg('COMPACTION_RUN', 'INSERT', { run_id: 'r1' }, { id: 'dup' });
    const plan = planBatch([m, { ...m, handle: 'h2' }], 'lines');
    expect(plan.parsed[0]!.raw.map((r) => r.handle)).toEqual([m.handle, 'h2']);
  });
});

// Issue 15 item 5: the original system's EMBED and LINES/WORDS messages of every era are accepted byte for byte.
// Each body below is what the original's code at that commit sends (tnorlund/Portfolio; seed-system §2.2, §2.3):
// Python `json.dumps` of the dict it builds (", " and ": " separators, key order as built, `None` → null), with the
// message attributes it sets. The ids and times are made up; the shapes are not.
import { describe, expect, it } from 'vitest';
import { planBatch } from '../../../compactor/plan.js';
import { admitEmbedMessage } from '../../../core/jobs/admission.js';
import type { QueueMessage } from '../../../core/ports/queue.js';

const IMG = 'b3a1f0c2-6d4e-4f8a-9c1b-2e3d4f5a6b7c';
const RUN = '7e2d9c41-0b5a-4c3e-8f1d-6a9b8c7d5e4f';
const ATTRS = (entity: string, event: string, collection: string) => ({
  source: 'dynamodb_stream',
  entity_type: entity,
  event_name: event,
  collection,
});

/** EMBED_NDJSON_QUEUE bodies (§2.2): `process_ocr_results.py` (era A, b2bf26a26) and the combine-receipts export
 * (`infra/combine_receipts_step_functions/lambdas/s3_io.py`, still sending in era C, f0fb5388a). Same dict, same order. */
const EMBED = {
  'era A: process_ocr_results.py (Sep 2025)': `{"image_id": "${IMG}", "receipt_id": 1, "artifacts_bucket": "upload-images-artifacts-1f0e2d3", "lines_key": "receipts/${IMG}/receipt-00001/lines.ndjson", "words_key": "receipts/${IMG}/receipt-00001/words.ndjson"}`,
  'era C: combine-receipts export (Jul 2026)': `{"image_id": "${IMG}", "receipt_id": 3, "artifacts_bucket": "combine-receipts-artifacts-9a8b7c6", "lines_key": "receipts/${IMG}/receipt-00003/lines.ndjson", "words_key": "receipts/${IMG}/receipt-00003/words.ndjson"}`,
};

interface Recorded {
  body: string;
  attributes: Record<string, string>;
}

/** LINES/WORDS bodies (§2.3) by era of the original's stream processor. */
const ERAS: Record<string, Record<string, Recorded>> = {
  // infra/chromadb_compaction/lambdas/stream_processor.py at b2bf26a26 (FIFO queues; no group id yet).
  'Sep 2025 (b2bf26a26)': {
    'COMPACTION_RUN INSERT, prefixes with a trailing slash': {
      body: `{"source": "dynamodb_stream", "entity_type": "COMPACTION_RUN", "entity_data": {"run_id": "${RUN}", "image_id": "${IMG}", "receipt_id": 1, "lines_delta_prefix": "lines/delta/${RUN}/", "words_delta_prefix": "words/delta/${RUN}/", "delta_s3_prefix": "lines/delta/${RUN}/"}, "changes": {}, "event_name": "INSERT", "timestamp": "2025-09-24T18:02:11.482913+00:00", "stream_record_id": "5c3e0a8d1f7b4e2a9d6c8b0a1e2f3d4c", "aws_region": "us-east-1"}`,
      attributes: ATTRS('COMPACTION_RUN', 'INSERT', 'lines'),
    },
    'RECEIPT_METADATA MODIFY': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_METADATA", "entity_data": {"entity_type": "RECEIPT_METADATA", "image_id": "${IMG}", "receipt_id": 1}, "changes": {"canonical_merchant_name": {"old": "", "new": "Sprouts Farmers Market"}, "merchant_name": {"old": "SPROUTS", "new": "Sprouts Farmers Market"}}, "event_name": "MODIFY", "timestamp": "2025-09-24T18:05:42.013377+00:00", "stream_record_id": "8f1a2b3c4d5e6f708192a3b4c5d6e7f8", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_METADATA', 'MODIFY', 'lines'),
    },
    'RECEIPT_WORD_LABEL REMOVE': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_WORD_LABEL", "entity_data": {"entity_type": "RECEIPT_WORD_LABEL", "image_id": "${IMG}", "receipt_id": 1, "line_id": 12, "word_id": 3, "label": "GRAND_TOTAL"}, "changes": {"label": {"old": "GRAND_TOTAL", "new": null}, "reasoning": {"old": "Largest amount after TOTAL", "new": null}, "validation_status": {"old": "VALID", "new": null}}, "event_name": "REMOVE", "timestamp": "2025-09-24T18:07:00.000001+00:00", "stream_record_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_WORD_LABEL', 'REMOVE', 'words'),
    },
  },
  // infra/chromadb_compaction/lambdas/processor/* at c6b48d2e1 / b81b0090d: + completion messages on run MODIFY.
  'Oct–Dec 2025 (c6b48d2e1, b81b0090d)': {
    'COMPACTION_RUN INSERT, per-file prefix': {
      body: `{"source": "dynamodb_stream", "entity_type": "COMPACTION_RUN", "entity_data": {"run_id": "${RUN}", "image_id": "${IMG}", "receipt_id": 2, "lines_delta_prefix": "lines/delta/${RUN}/4f0c1e2d3b5a46978812a3b4c5d6e7f8/", "words_delta_prefix": "words/delta/${RUN}/9e8d7c6b5a4f43218765fedcba987654/", "delta_s3_prefix": "words/delta/${RUN}/9e8d7c6b5a4f43218765fedcba987654/"}, "changes": {}, "event_name": "INSERT", "timestamp": "2025-11-20T09:15:30.250000+00:00", "stream_record_id": "1b2c3d4e5f60718293a4b5c6d7e8f90a", "aws_region": "us-east-1"}`,
      attributes: ATTRS('COMPACTION_RUN', 'INSERT', 'words'),
    },
    'COMPACTION_RUN MODIFY (completion)': {
      body: `{"source": "dynamodb_stream", "entity_type": "COMPACTION_RUN", "entity_data": {"run_id": "${RUN}", "image_id": "${IMG}", "receipt_id": 2}, "changes": {}, "event_name": "MODIFY", "timestamp": "2025-11-20T09:16:02.918273+00:00", "stream_record_id": "2c3d4e5f60718293a4b5c6d7e8f90a1b", "aws_region": "us-east-1"}`,
      attributes: ATTRS('COMPACTION_RUN', 'MODIFY', 'lines'),
    },
    'RECEIPT_METADATA REMOVE': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_METADATA", "entity_data": {"entity_type": "RECEIPT_METADATA", "image_id": "${IMG}", "receipt_id": 2}, "changes": {"merchant_name": {"old": "Blue Bottle Coffee", "new": null}, "place_id": {"old": "ChIJ0T2NLikpdTERKxE8d61aX_E", "new": null}}, "event_name": "REMOVE", "timestamp": "2025-12-01T00:00:00.000000+00:00", "stream_record_id": "3d4e5f60718293a4b5c6d7e8f90a1b2c", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_METADATA', 'REMOVE', 'words'),
    },
  },
  // 8bea3462a (Jan 2026): Standard queues, RECEIPT_PLACE, deletions of receipts, lines and words.
  'Jan 2026 (8bea3462a)': {
    'COMPACTION_RUN INSERT, prefix without a slash': {
      body: `{"source": "dynamodb_stream", "entity_type": "COMPACTION_RUN", "entity_data": {"run_id": "${RUN}", "image_id": "${IMG}", "receipt_id": 3, "lines_delta_prefix": "lines/delta/${RUN}", "words_delta_prefix": "words/delta/${RUN}", "delta_s3_prefix": "lines/delta/${RUN}"}, "changes": {}, "event_name": "INSERT", "timestamp": "2026-01-04T10:00:00.123456+00:00", "stream_record_id": "4e5f60718293a4b5c6d7e8f90a1b2c3d", "aws_region": "us-east-1"}`,
      attributes: ATTRS('COMPACTION_RUN', 'INSERT', 'lines'),
    },
    'RECEIPT_PLACE MODIFY': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_PLACE", "entity_data": {"entity_type": "RECEIPT_PLACE", "image_id": "${IMG}", "receipt_id": 3}, "changes": {"merchant_name": {"old": "Costco", "new": "Costco Wholesale"}, "formatted_address": {"old": null, "new": "1600 Main St, Springfield, IL 62701, USA"}}, "event_name": "MODIFY", "timestamp": "2026-01-04T10:00:05.000001+00:00", "stream_record_id": "5f60718293a4b5c6d7e8f90a1b2c3d4e", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_PLACE', 'MODIFY', 'words'),
    },
    'RECEIPT_LINE REMOVE': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_LINE", "entity_data": {"entity_type": "RECEIPT_LINE", "image_id": "${IMG}", "receipt_id": 3, "line_id": 7}, "changes": {}, "event_name": "REMOVE", "timestamp": "2026-01-04T10:00:01.000000+00:00", "stream_record_id": "60718293a4b5c6d7e8f90a1b2c3d4e5f", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_LINE', 'REMOVE', 'lines'),
    },
    'RECEIPT_WORD REMOVE': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_WORD", "entity_data": {"entity_type": "RECEIPT_WORD", "image_id": "${IMG}", "receipt_id": 3, "line_id": 7, "word_id": 2}, "changes": {}, "event_name": "REMOVE", "timestamp": "2026-01-04T10:00:01.500000+00:00", "stream_record_id": "718293a4b5c6d7e8f90a1b2c3d4e5f60", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_WORD', 'REMOVE', 'words'),
    },
    'RECEIPT REMOVE': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT", "entity_data": {"entity_type": "RECEIPT", "image_id": "${IMG}", "receipt_id": 4}, "changes": {}, "event_name": "REMOVE", "timestamp": "2026-01-04T10:00:00.900000+00:00", "stream_record_id": "8293a4b5c6d7e8f90a1b2c3d4e5f6071", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT', 'REMOVE', 'lines'),
    },
  },
  // receipt_dynamo_stream at f0fb5388a / HEAD 1b6540c81 (Jul–Aug 2026): + RECEIPT_SECTION, also on INSERT.
  'Jul–Aug 2026 (f0fb5388a, 1b6540c81)': {
    'RECEIPT_SECTION INSERT': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_SECTION", "entity_data": {"entity_type": "RECEIPT_SECTION", "image_id": "${IMG}", "receipt_id": 5, "section_type": "ITEMS"}, "changes": {"section_type": {"old": null, "new": "ITEMS"}, "line_ids": {"old": null, "new": [4, 5, 6]}, "confidence": {"old": null, "new": 0.92}, "validation_status": {"old": null, "new": "PENDING"}}, "event_name": "INSERT", "timestamp": "2026-07-14T12:00:00.654321+00:00", "stream_record_id": "93a4b5c6d7e8f90a1b2c3d4e5f607182", "aws_region": "us-east-1"}`,
      attributes: ATTRS('RECEIPT_SECTION', 'INSERT', 'lines'),
    },
    'RECEIPT_WORD_LABEL MODIFY': {
      body: `{"source": "dynamodb_stream", "entity_type": "RECEIPT_WORD_LABEL", "entity_data": {"entity_type": "RECEIPT_WORD_LABEL", "image_id": "${IMG}", "receipt_id": 5, "line_id": 9, "word_id": 1, "label": "TAX"}, "changes": {"validation_status": {"old": "PENDING", "new": "VALID"}, "label_consolidated_from": {"old": null, "new": "SUBTOTAL"}}, "event_name": "MODIFY", "timestamp": "2026-08-20T08:30:00.000100+00:00", "stream_record_id": "a4b5c6d7e8f90a1b2c3d4e5f60718293", "aws_region": "us-west-2"}`,
      attributes: ATTRS('RECEIPT_WORD_LABEL', 'MODIFY', 'words'),
    },
  },
};

let n = 0;
const queued = (r: Recorded): QueueMessage => ({
  id: `m${++n}`,
  handle: `h${n}`,
  body: r.body,
  attributes: r.attributes,
  receiveCount: 1,
});

describe('EMBED messages of every era (seed-system §2.2)', () => {
  it.each(Object.entries(EMBED))('%s is admitted as it is', (_era, body) => {
    const bucket = (JSON.parse(body) as { artifacts_bucket: string }).artifacts_bucket;
    const a = admitEmbedMessage(body, [bucket]);
    expect(a).toEqual({ ok: true, message: JSON.parse(body) });
  });
});

describe('LINES / WORDS messages of every era (seed-system §2.3)', () => {
  const all = Object.entries(ERAS).flatMap(([era, msgs]) =>
    Object.entries(msgs).map(([what, r]) => [`${era}: ${what}`, r] as const),
  );

  it.each(all)('%s parses; nothing goes to the DLQ', (_name, r) => {
    const plan = planBatch([queued(r)], r.attributes.collection as 'lines' | 'words');
    expect(plan.dlq).toEqual([]);
    expect(plan.parsed).toHaveLength(1);
  });

  it('each means what it meant: runs to merge, receipts to re-enrich, ids and receipts to delete', () => {
    const byQueue = (c: 'lines' | 'words') =>
      planBatch(
        all.filter(([, r]) => r.attributes.collection === c).map(([, r]) => queued(r)),
        c,
      );
    const lines = byQueue('lines');
    const words = byQueue('words');
    // COMPACTION_RUN INSERTs of every era name a run; the completion MODIFY of Oct–Dec 2025 is acknowledged, no run.
    expect(lines.runs).toEqual([
      { imageId: IMG, receiptId: 1, runId: RUN },
      { imageId: IMG, receiptId: 3, runId: RUN },
    ]);
    expect(words.runs).toEqual([{ imageId: IMG, receiptId: 2, runId: RUN }]);
    // RECEIPT_METADATA is the merchant entity's old name: read as RECEIPT_PLACE (a REMOVE nulls the place fields).
    expect(
      lines.parsed.find((p) => p.raw[0]!.attributes.entity_type === 'RECEIPT_METADATA')!.msg.entity_type,
    ).toBe('RECEIPT_PLACE');
    expect([...lines.touched.values()]).toEqual(
      expect.arrayContaining([
        { imageId: IMG, receiptId: 1, placeRemoved: false },
        { imageId: IMG, receiptId: 5, placeRemoved: false },
      ]),
    );
    expect([...words.touched.values()]).toEqual(
      expect.arrayContaining([
        { imageId: IMG, receiptId: 2, placeRemoved: true },
        { imageId: IMG, receiptId: 3, placeRemoved: false },
        { imageId: IMG, receiptId: 1, placeRemoved: false },
        { imageId: IMG, receiptId: 5, placeRemoved: false },
      ]),
    );
    expect([...lines.deleteIds]).toEqual([`IMAGE#${IMG}#RECEIPT#00003#LINE#00007`]);
    expect([...words.deleteIds]).toEqual([`IMAGE#${IMG}#RECEIPT#00003#LINE#00007#WORD#00002`]);
    expect([...lines.deleteReceipts.values()]).toEqual([
      { imageId: IMG, receiptId: 4, at: '2026-01-04T10:00:00.900000+00:00' },
    ]);
  });

  it("orders the original's microsecond +00:00 times and this project's millisecond Z times by instant", () => {
    const at = (timestamp: string, runId: string): Recorded => ({
      body: JSON.stringify({
        source: 'dynamodb_stream',
        entity_type: 'COMPACTION_RUN',
        entity_data: { run_id: runId, image_id: IMG, receipt_id: 1 },
        changes: {},
        event_name: 'INSERT',
        timestamp,
        stream_record_id: runId,
      }),
      attributes: ATTRS('COMPACTION_RUN', 'INSERT', 'lines'),
    });
    const plan = planBatch(
      [
        at('2026-01-04T10:00:00.500Z', 'ours-later'),
        at('2026-01-04T11:00:00.000000+01:00', 'original-earlier'), // 10:00:00.000 UTC
        at('2026-01-04T10:00:00.200Z', 'ours-between'),
      ].map(queued),
      'lines',
    );
    expect(plan.runs.map((r) => r.runId)).toEqual(['original-earlier', 'ours-between', 'ours-later']);
  });
});

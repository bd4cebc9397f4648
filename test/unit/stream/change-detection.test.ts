import { describe, expect, it } from 'vitest';
import type { EmbeddingJobStatus } from '../../../core/contracts/embedding-job.js';
import type { ChangeRecord } from '../../../core/ports/ledger.js';
import { detect, entityTypeOf } from '../../../stream/change-detection.js';
import type { Kube } from '../../../core/kube/rest.js';
import { KubeJobStatusSink } from '../../../stream/job-status.js';

const IMG = '3f2a1b4c-0000-4000-8000-000000000001';
const PK = `IMAGE#${IMG}`;
const ts = '2026-01-01T00:00:00.000Z';

function rec(
  eventName: ChangeRecord['eventName'],
  SK: string,
  oldImage?: object,
  newImage?: object,
): ChangeRecord {
  return {
    id: `ev-${SK}`,
    eventName,
    keys: { PK, SK },
    ...(oldImage ? { oldImage: { PK, SK, ...oldImage } } : {}),
    ...(newImage ? { newImage: { PK, SK, ...newImage } } : {}),
  };
}

const run = {
  run_id: 'r1',
  image_id: IMG,
  receipt_id: 1,
  job_name: 'ej-1',
  lines_delta_key: 'lines/delta/r1/delta.arrow',
  words_delta_key: 'words/delta/r1/delta.arrow',
  lines_sha256: 'a'.repeat(64),
  words_sha256: 'b'.repeat(64),
  lines_vectors: 3,
  words_vectors: 9,
  lines_state: 'PENDING',
  words_state: 'PENDING',
};

describe('entity type from the sort key (first match wins)', () => {
  it.each([
    ['RECEIPT#00001#PLACE', 'RECEIPT_PLACE'],
    ['RECEIPT#00001#LINE#00002#WORD#00003#LABEL#TOTAL', 'RECEIPT_WORD_LABEL'],
    ['RECEIPT#00001#SECTION#HEADER', 'RECEIPT_SECTION'],
    ['RECEIPT#00001#COMPACTION_RUN#abc', 'COMPACTION_RUN'],
    ['RECEIPT#00001#LINE#00002#WORD#00003', 'RECEIPT_WORD'],
    ['RECEIPT#00001#LINE#00002', 'RECEIPT_LINE'],
    ['RECEIPT#00001', 'RECEIPT'],
    ['RECEIPT#00001#LETTER', undefined],
  ])('%s → %s', (sk, type) => expect(entityTypeOf(sk)).toBe(type));
});

describe('change detection (docs/adr/0009, with the fixes)', () => {
  it('CompactionRun INSERT → one message per collection carrying that collection delta, hash and job', () => {
    const d = detect(rec('INSERT', 'RECEIPT#00001#COMPACTION_RUN#r1', undefined, run), ts);
    expect(d.messages.map((m) => m.collection)).toEqual(['lines', 'words']);
    expect(d.messages[0]!.message.entity_data).toMatchObject({
      run_id: 'r1',
      image_id: IMG,
      receipt_id: 1,
      delta_key: run.lines_delta_key,
      sha256: run.lines_sha256,
      vectors: 3,
      job_name: 'ej-1',
    });
    expect(d.messages[1]!.message.entity_data).toMatchObject({ delta_key: run.words_delta_key, vectors: 9 });
    expect(d.messages[0]!.message).toMatchObject({
      event_name: 'INSERT',
      stream_record_id: 'ev-RECEIPT#00001#COMPACTION_RUN#r1',
    });
  });

  it("a run of the original system's workers → one message per collection carrying its prefix, as the original's did", () => {
    const prefixes = { lines_delta_prefix: 'lines/delta/r1', words_delta_prefix: 'words/delta/r1/abc/' };
    const original = {
      run_id: 'r1',
      image_id: IMG,
      receipt_id: 1,
      lines_state: 'PENDING',
      words_state: 'PENDING',
    };
    const d = detect(
      rec('INSERT', 'RECEIPT#00001#COMPACTION_RUN#r1', undefined, { ...original, ...prefixes }),
      ts,
    );
    expect(d.messages.map((m) => m.collection)).toEqual(['lines', 'words']);
    expect(JSON.parse(JSON.stringify(d.messages[1]!.message.entity_data))).toEqual({
      run_id: 'r1',
      image_id: IMG,
      receipt_id: 1,
      ...prefixes,
      delta_s3_prefix: 'words/delta/r1/abc/',
    });
  });

  it('CompactionRun MODIFY emits no message (failure 16: empty cycles) but reports COMPLETED/FAILED transitions', () => {
    const done = detect(
      rec('MODIFY', 'RECEIPT#00001#COMPACTION_RUN#r1', run, {
        ...run,
        lines_state: 'COMPLETED',
        lines_merged_vectors: 3,
      }),
      ts,
    );
    expect(done.messages).toEqual([]);
    expect(done.reports).toEqual([
      expect.objectContaining({
        jobName: 'ej-1',
        collection: 'lines',
        state: 'Completed',
        mergedVectors: 3,
        runId: 'r1',
      }),
    ]);
    const failed = detect(
      rec('MODIFY', 'RECEIPT#00001#COMPACTION_RUN#r1', run, {
        ...run,
        words_state: 'FAILED',
        words_error: 'sha256 mismatch',
      }),
      ts,
    );
    expect(failed.reports).toEqual([
      expect.objectContaining({ collection: 'words', state: 'Failed', error: 'sha256 mismatch' }),
    ]);
    // No transition, no report (a replayed MODIFY after COMPLETED is idempotent anyway).
    const same = detect(
      rec('MODIFY', 'RECEIPT#00001#COMPACTION_RUN#r1', run, { ...run, updated_at: 'x' }),
      ts,
    );
    expect(same).toEqual({ messages: [], reports: [] });
  });

  it('place INSERT emits to lines and words (the original missed a place created after the embed)', () => {
    const d = detect(rec('INSERT', 'RECEIPT#00001#PLACE', undefined, { merchant_name: 'Sprouts' }), ts);
    expect(d.messages.map((m) => m.collection)).toEqual(['lines', 'words']);
    expect(d.messages[0]!.message.changes).toEqual({ merchant_name: { old: null, new: 'Sprouts' } });
  });

  it('place MODIFY emits only when a relevant field changed', () => {
    expect(
      detect(
        rec('MODIFY', 'RECEIPT#00001#PLACE', { merchant_name: 'A', x: 1 }, { merchant_name: 'A', x: 2 }),
        ts,
      ).messages,
    ).toEqual([]);
    expect(
      detect(rec('MODIFY', 'RECEIPT#00001#PLACE', { merchant_name: 'A' }, { merchant_name: 'B' }), ts)
        .messages,
    ).toHaveLength(2);
  });

  it('label INSERT/MODIFY/REMOVE → words and lines with line/word/label ids', () => {
    const sk = 'RECEIPT#00002#LINE#00007#WORD#00003#LABEL#GRAND_TOTAL';
    for (const [ev, o, n] of [
      ['INSERT', undefined, { label: 'GRAND_TOTAL', validation_status: 'PENDING' }],
      ['MODIFY', { validation_status: 'PENDING' }, { validation_status: 'VALID' }],
      ['REMOVE', { label: 'GRAND_TOTAL' }, undefined],
    ] as const) {
      const d = detect(rec(ev, sk, o, n), ts);
      expect(d.messages.map((m) => m.collection)).toEqual(['words', 'lines']);
      expect(d.messages[0]!.message.entity_data).toMatchObject({
        receipt_id: 2,
        line_id: 7,
        word_id: 3,
        label: 'GRAND_TOTAL',
      });
    }
  });

  it('section changes go to lines only', () => {
    const d = detect(
      rec('INSERT', 'RECEIPT#00001#SECTION#ITEMS', undefined, { section_type: 'ITEMS', line_ids: [1, 2] }),
      ts,
    );
    expect(d.messages.map((m) => m.collection)).toEqual(['lines']);
    expect(d.messages[0]!.message.entity_data).toMatchObject({ section_type: 'ITEMS' });
  });

  it('receipt/line/word: only REMOVE emits (deletions); INSERT/MODIFY never do', () => {
    expect(
      detect(rec('MODIFY', 'RECEIPT#00001#LINE#00001', { text: 'a' }, { text: 'b' }), ts).messages,
    ).toEqual([]);
    expect(detect(rec('INSERT', 'RECEIPT#00001', undefined, { a: 1 }), ts).messages).toEqual([]);
    expect(detect(rec('REMOVE', 'RECEIPT#00001', { a: 1 }), ts).messages.map((m) => m.collection)).toEqual([
      'lines',
      'words',
    ]);
    expect(
      detect(rec('REMOVE', 'RECEIPT#00001#LINE#00004', { a: 1 }), ts).messages.map((m) => m.collection),
    ).toEqual(['lines']);
    const w = detect(rec('REMOVE', 'RECEIPT#00001#LINE#00004#WORD#00002', { a: 1 }), ts);
    expect(w.messages.map((m) => m.collection)).toEqual(['words']);
    expect(w.messages[0]!.message.entity_data).toMatchObject({ receipt_id: 1, line_id: 4, word_id: 2 });
  });

  it('ignores keys outside IMAGE# partitions and unknown sort keys', () => {
    expect(detect({ id: 'x', eventName: 'INSERT', keys: { PK: 'LOCK#x', SK: 'LOCK' } }, ts).messages).toEqual(
      [],
    );
    expect(detect(rec('INSERT', 'RECEIPT#00001#LETTER#1'), ts).messages).toEqual([]);
  });
});

/** A run of a job whose `spec.collections` named one collection: no field of the other. */
function only(c: 'lines' | 'words') {
  const other = c === 'lines' ? 'words' : 'lines';
  return Object.fromEntries(Object.entries(run).filter(([k]) => !k.startsWith(`${other}_`)));
}

/** KubeJobStatusSink over an in-memory EmbeddingJob (its read, and the status subresource's merge patch). */
function memorySink(job: { spec: object; status?: EmbeddingJobStatus }) {
  const state = { job: { metadata: { name: 'ej-1', resourceVersion: '1', generation: 1 }, ...job } };
  const kube: Kube = {
    request: async <T>(method: string, _path: string, opts?: { body?: unknown }): Promise<T> => {
      if (method === 'PATCH') {
        const patch = opts?.body as { status: EmbeddingJobStatus };
        state.job = { ...state.job, status: { ...state.job.status, ...patch.status } };
      }
      return structuredClone(state.job) as T;
    },
    stream: async () => undefined,
  };
  return { sink: new KubeJobStatusSink(kube, 'ns'), state };
}

describe('a run that carries one collection (its job asked for one)', () => {
  it('CompactionRun INSERT of a lines-only run → one message, on the lines queue, with no words fields', () => {
    const d = detect(rec('INSERT', 'RECEIPT#00001#COMPACTION_RUN#r1', undefined, only('lines')), ts);
    expect(d.messages.map((m) => m.collection)).toEqual(['lines']);
    const data = d.messages[0]!.message.entity_data;
    expect(data).toMatchObject({ delta_key: run.lines_delta_key, sha256: run.lines_sha256, vectors: 3 });
    expect(Object.keys(data).filter((k) => k.startsWith('words'))).toEqual([]);
  });

  it('CompactionRun INSERT of a words-only run → one message, on the words queue', () => {
    const d = detect(rec('INSERT', 'RECEIPT#00001#COMPACTION_RUN#r1', undefined, only('words')), ts);
    expect(d.messages.map((m) => m.collection)).toEqual(['words']);
    expect(d.messages[0]!.message.entity_data).toMatchObject({ delta_key: run.words_delta_key, vectors: 9 });
  });

  it('a run that carries no collection queues nothing', () => {
    const bare = Object.fromEntries(Object.entries(run).filter(([k]) => !/^(lines|words)_/.test(k)));
    expect(detect(rec('INSERT', 'RECEIPT#00001#COMPACTION_RUN#r1', undefined, bare), ts).messages).toEqual(
      [],
    );
  });

  it('MODIFY of a lines-only run with lines COMPLETED reports it, and the EmbeddingJob becomes Compacted', async () => {
    const before = only('lines');
    const d = detect(
      rec('MODIFY', 'RECEIPT#00001#COMPACTION_RUN#r1', before, {
        ...before,
        lines_state: 'COMPLETED',
        lines_merged_vectors: 3,
      }),
      ts,
    );
    expect(d.reports).toEqual([
      expect.objectContaining({ collection: 'lines', state: 'Completed', runCollections: ['lines'] }),
    ]);
    // The run decides what compaction waits for: words is not part of it, whatever the spec says.
    for (const spec of [{}, { collections: ['lines', 'words'] }]) {
      const { sink, state } = memorySink({ spec });
      for (const r of d.reports) await sink.report(r);
      expect(state.job.status?.compaction, JSON.stringify(spec)).toEqual({ lines: 'Completed' });
      expect(state.job.status?.conditions, JSON.stringify(spec)).toEqual([
        expect.objectContaining({ type: 'Compacted', status: 'True', reason: 'Compacted' }),
      ]);
    }
  });

  it('a run of both collections still waits for both', async () => {
    const d = detect(
      rec('MODIFY', 'RECEIPT#00001#COMPACTION_RUN#r1', run, { ...run, lines_state: 'COMPLETED' }),
      ts,
    );
    const { sink, state } = memorySink({ spec: { collections: ['lines', 'words'] } });
    for (const r of d.reports) await sink.report(r);
    expect(state.job.status?.conditions).toEqual([
      expect.objectContaining({ type: 'Compacted', status: 'False', reason: 'CompactionPending' }),
    ]);
  });
});

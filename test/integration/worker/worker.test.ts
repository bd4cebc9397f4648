import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { runKey } from '../../../core/contracts/compaction-run.js';
import { deltaKey } from '../../../core/contracts/ids.js';
import { decodeDelta } from '../../../core/delta/arrow-delta.js';
import { embedText } from '../../../core/embedding/local-embedder.js';
import { startEmbeddingsServer } from '../../../core/embedding/local-server.js';
import { OpenAIEmbedder } from '../../../core/embedding/openai-embedder.js';
import { SnapshotLinesIndexSource } from '../../../core/chroma/lines-snapshot.js';
import { buildReceiptItems } from '../../../core/receipt/embedding-inputs.js';
import { DEFECTS, generateReceipt, MERCHANTS, putReceipt } from '../../../core/sample/index.js';
import { uploadSnapshot } from '../../../core/snapshot/s3-snapshot.js';
import { batchedQueries } from '../../../worker/batched-queries.js';
import { processBatch } from '../../../worker/batch.js';
import type { WorkerDeps } from '../../../worker/context.js';
import type { WorkItem } from '../../../worker/work-item.js';
import { runIdFor } from '../../../worker/run-id.js';
import '../../harness/env.js';
import { awsFixtures, DIMS, log, memoryReporter, seedLinesSnapshot, workItem } from './helpers.js';

const env = inject('testEnv');
let fx: Awaited<ReturnType<typeof awsFixtures>>;

beforeAll(async () => {
  fx = await awsFixtures(env, 'worker');
});

function deps(over: Partial<WorkerDeps> = {}): WorkerDeps & { reporter: ReturnType<typeof memoryReporter> } {
  return {
    store: fx.store,
    ledger: fx.ledger,
    embedder: new OpenAIEmbedder({
      apiKey: env.embeddings.apiKey,
      baseURL: env.embeddings.baseUrl,
      model: 'text-embedding-3-small',
      dimensions: DIMS,
    }),
    vectorsBucket: fx.vectors,
    log,
    ...over,
    reporter: memoryReporter(),
  } as WorkerDeps & { reporter: ReturnType<typeof memoryReporter> };
}

describe('worker: a realistic receipt', () => {
  it('writes both deltas with the expected ids, documents, metadata and vectors, then the CompactionRun', async () => {
    const r = generateReceipt(101, { merchant: 2, branch: 1, items: 6, url: true });
    const msg = await putReceipt(fx.store, fx.artifacts, r);
    const item = workItem(msg);
    const d = deps();
    const out = await processBatch(d, [item]);
    expect(out.exitCode).toBe(0);
    expect(d.reporter.reports).toHaveLength(1);
    const rep = d.reporter.reports[0]!;
    expect(rep.outcome).toBe('Succeeded');
    const runId = runIdFor(item, 1);
    const expected = buildReceiptItems({
      imageId: r.imageId,
      receiptId: r.receiptId,
      lines: r.lines,
      words: r.words,
    });
    expect(rep.result).toMatchObject({
      runId,
      lines: r.lines.length,
      rows: expected.lines.length,
      words: expected.words.length,
      linesDeltaKey: deltaKey('lines', runId),
      wordsDeltaKey: deltaKey('words', runId),
      merchantReason: 'merchant resolution disabled',
    });
    expect(rep.result!.merchant).toBeUndefined();

    const run = await fx.ledger.getRun(r.imageId, r.receiptId, runId);
    expect(run).toMatchObject({
      ...runKey(r.imageId, r.receiptId, runId),
      TYPE: 'COMPACTION_RUN',
      job_name: item.name,
      model: 'text-embedding-3-small',
      dimensions: DIMS,
      lines_state: 'PENDING',
      words_state: 'PENDING',
      lines_delta_key: deltaKey('lines', runId),
      words_delta_key: deltaKey('words', runId),
      lines_vectors: expected.lines.length,
      words_vectors: expected.words.length,
    });

    for (const c of ['lines', 'words'] as const) {
      const bytes = await fx.store.getBuffer(fx.vectors, deltaKey(c, runId));
      const head = await fx.store.head(fx.vectors, deltaKey(c, runId));
      expect(head?.metadata).toMatchObject({ run_id: runId, collection: c, sha256: run![`${c}_sha256`] });
      const { header, records } = decodeDelta(bytes, run![`${c}_sha256`]);
      expect(header).toMatchObject({
        collection: c,
        runId,
        dimensions: DIMS,
        model: 'text-embedding-3-small',
      });
      const want = c === 'lines' ? expected.lines : expected.words;
      expect(records.map((x) => x.id)).toEqual(want.map((x) => x.id));
      expect(records.map((x) => x.document)).toEqual(want.map((x) => x.document));
      expect(records.map((x) => x.metadata)).toEqual(want.map((x) => x.metadata));
      records.forEach((x, i) =>
        expect(Array.from(x.embedding)).toEqual(Array.from(embedText(want[i]!.input, DIMS))),
      );
    }
    // Full geometry survives: the row of an item with a split price carries the union box of its lines.
    const lines = decodeDelta(await fx.store.getBuffer(fx.vectors, deltaKey('lines', runId))).records;
    const phone = lines.find((x) => x.document.startsWith('TEL'))!;
    expect(phone.metadata).toMatchObject({
      normalized_phone_10: '4045550163',
      source: 'openai_embedding_batch',
    });
    const split = lines.find((x) => JSON.parse(x.metadata.row_line_ids as string).length >= 2)!;
    expect(split.metadata.width).toBeGreaterThan(0.5);
  });
});

describe('worker: merchant resolution', () => {
  // The snapshot holds two receipts of every branch of merchants 0–4; merchant 5 (Walgreens) is absent.
  let root: string;
  beforeAll(async () => {
    const seeded = [];
    let seed = 5000;
    for (let m = 0; m < 5; m++) {
      for (let b = 0; b < MERCHANTS[m]!.branches.length; b++) {
        for (let k = 0; k < 2; k++) seeded.push(generateReceipt(seed++, { merchant: m, branch: b }));
      }
    }
    root = (await seedLinesSnapshot(seeded)).root;
  });

  const source = async (chromaRoot: string | undefined, bucket = fx.vectors) =>
    new SnapshotLinesIndexSource({
      chromaRoot,
      scratchDir: await mkdtemp(join(tmpdir(), 'worker-scratch-')),
      objectStore: fx.store,
      vectorsBucket: bucket,
      log,
    });

  it('picks the right merchant for known branches and leaves it empty for an unknown merchant, one snapshot per batch', async () => {
    const known = [
      generateReceipt(9001, { merchant: 2, branch: 2 }),
      generateReceipt(9002, { merchant: 0, branch: 1 }),
      generateReceipt(9003, { merchant: 3, branch: 0 }),
    ];
    const unknown = generateReceipt(9004, { merchant: 5, branch: 0 });
    const items: WorkItem[] = [];
    for (const r of [...known, unknown]) items.push(workItem(await putReceipt(fx.store, fx.artifacts, r)));
    const d = deps({ linesIndex: await source(root) });
    const out = await processBatch(d, items);
    expect(out.merchantIndex).toMatchObject({ origin: 'volume' });
    const byName = new Map(d.reporter.reports.map((x) => [x.name, x]));
    known.forEach((r, i) => {
      const rep = byName.get(items[i]!.name)!;
      expect(rep.result?.merchant, rep.result?.merchantReason).toBe(r.merchant.name);
      expect(rep.result?.merchantReason).toMatch(/^chroma_(phone|address)/);
    });
    const miss = byName.get(items[3]!.name)!;
    expect(miss.outcome).toBe('Succeeded');
    expect(miss.result?.merchant).toBeUndefined();
    expect(miss.result?.merchantReason).toMatch(/no (match|similar)/);
    // The resolved name lands in the metadata of both collections.
    const runId = miss.result!.runId;
    const ok = byName.get(items[0]!.name)!.result!;
    const words = decodeDelta(await fx.store.getBuffer(fx.vectors, ok.wordsDeltaKey!)).records;
    expect(words.every((w) => w.metadata.merchant_name === 'Home Depot')).toBe(true);
    const missWords = decodeDelta(await fx.store.getBuffer(fx.vectors, deltaKey('words', runId))).records;
    expect(missWords.every((w) => w.metadata.merchant_name === '')).toBe(true);
  });

  it('batched merchant queries return exactly what single queries return', async () => {
    const idx = (await (await source(root)).open())!;
    try {
      const batched = batchedQueries(idx.store);
      expect(batched).not.toBe(idx.store);
      const vectors = Array.from({ length: 70 }, (_, i) =>
        embedText(`${MERCHANTS[i % 5]!.name} ${i} MAIN ST`, DIMS),
      );
      const single = await Promise.all(vectors.map((v) => idx.store.query('lines', v, 20)));
      // Issued together (more than one request's worth), as the receipts of one embedding response do.
      const together = await Promise.all(vectors.map((v) => batched.query('lines', v, 20)));
      // Hits at equal distance (the seeded snapshot holds identical rows of different receipts) may come back in
      // either order, and when such a tie straddles the 20th place either of them may be the one returned: compare
      // the hits closer than the last distance exactly, and at the last distance only their documents.
      const norm = (hits: Awaited<ReturnType<typeof batched.query>>) => {
        const last = Math.max(...hits.map((h) => h.distance));
        return {
          closer: hits
            .filter((h) => h.distance < last)
            .sort((a, b) => a.distance - b.distance || a.id.localeCompare(b.id)),
          last,
          atLast: hits
            .filter((h) => h.distance === last)
            .map((h) => h.document)
            .sort(),
        };
      };
      expect(together.map(norm)).toEqual(single.map(norm));
      expect(single.every((hits) => hits.length === 20)).toBe(true);
    } finally {
      await idx.close();
    }
  });

  it('restores from the S3 snapshot when the volume is empty, and says so when there is none', async () => {
    const bucket = `${fx.vectors}`;
    const r = generateReceipt(9101, { merchant: 1, branch: 0 });
    const item = workItem(await putReceipt(fx.store, fx.artifacts, r));
    const empty = await mkdtemp(join(tmpdir(), 'worker-empty-volume-'));
    const none = deps({ linesIndex: await source(empty) });
    await processBatch(none, [{ ...item, attemptKey: 'none' }]);
    expect(none.reporter.reports[0]!.result?.merchantReason).toBe('no lines snapshot yet');

    const seeded = await seedLinesSnapshot([generateReceipt(9102, { merchant: 1, branch: 0 })]);
    await uploadSnapshot(fx.store, bucket, 'lines', seeded.version, seeded.dir);
    const fromS3 = deps({ linesIndex: await source(empty) });
    const out = await processBatch(fromS3, [{ ...item, attemptKey: 's3' }]);
    expect(out.merchantIndex).toMatchObject({ origin: 's3', version: seeded.version });
    expect(fromS3.reporter.reports[0]!.result?.merchant).toBe('Blue Bottle Coffee');
  });
});

describe('worker: bad inputs', () => {
  it('fails each bad receipt with a reason naming file, row and field, writes nothing for it, and goes on', async () => {
    const good = generateReceipt(7000);
    const bad = DEFECTS.map((defect, i) => generateReceipt(7001 + i, { defect }));
    const items = [workItem(await putReceipt(fx.store, fx.artifacts, good), 'ej-good')];
    for (const [i, r] of bad.entries())
      items.push(workItem(await putReceipt(fx.store, fx.artifacts, r), `ej-bad-${i}`));
    const missing = {
      ...workItem(await putReceipt(fx.store, fx.artifacts, generateReceipt(7100)), 'ej-missing'),
    };
    missing.spec = { ...missing.spec, wordsKey: 'receipts/nope/words.ndjson' };
    items.push(missing);

    const d = deps();
    const out = await processBatch(d, items);
    expect(out.exitCode).toBe(0);
    const byName = new Map(d.reporter.reports.map((x) => [x.name, x]));
    expect(byName.get('ej-good')!.outcome).toBe('Succeeded');
    for (const [i, r] of bad.entries()) {
      const rep = byName.get(`ej-bad-${i}`)!;
      const def = r.defect!;
      expect(rep, def.kind).toMatchObject({ outcome: 'Failed', reason: 'BadInput' });
      const where = [
        def.file,
        def.row === undefined ? undefined : `row ${def.row}`,
        def.field === undefined ? undefined : `field ${def.field}`,
      ]
        .filter(Boolean)
        .join(', ');
      expect(rep.message, def.kind).toContain(where);
    }
    expect(byName.get('ej-missing')).toMatchObject({
      outcome: 'Failed',
      reason: 'SourceMissing',
      message: expect.stringContaining('receipts/nope/words.ndjson'),
    });

    for (const it of items.slice(1)) {
      const runId = runIdFor(it, 1);
      expect(await fx.ledger.getRun(it.spec.imageId, it.spec.receiptId, runId)).toBeUndefined();
      expect(await fx.store.list(fx.vectors, `lines/delta/${runId}/`)).toEqual([]);
      expect(await fx.store.list(fx.vectors, `words/delta/${runId}/`)).toEqual([]);
    }
  });
});

describe('worker: a key that escapes its bucket (S3)', () => {
  it('fails once as BadInput naming the key, and reads and writes nothing for it', async () => {
    const r = generateReceipt(7200);
    const msg = await putReceipt(fx.store, fx.artifacts, r);
    const escaping = workItem({ ...msg, lines_key: '../../etc/passwd' }, 'ej-escape-lines');
    const escapingWords = workItem({ ...msg, words_key: `${msg.words_key}/../../../x` }, 'ej-escape-words');
    // A lines snapshot that is still opening when both items have failed: it is closed all the same (before, its
    // Chroma server kept the worker alive until its deadline).
    let closed = 0;
    const slowIndex = {
      open: async () => {
        await new Promise((r) => setTimeout(r, 500));
        return {
          version: 'v-slow',
          origin: 'volume' as const,
          store: {} as never,
          close: async () => {
            closed++;
          },
        };
      },
    };
    const d = deps({ linesIndex: slowIndex });
    const out = await processBatch(d, [escaping, escapingWords]);
    expect(out.exitCode).toBe(0);
    expect(closed).toBe(1);
    const byName = new Map(d.reporter.reports.map((x) => [x.name, x]));
    expect(byName.get('ej-escape-lines')).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringMatching(/^lines_key: object key "\.\.\/\.\.\/etc\/passwd" escapes bucket/),
    });
    expect(byName.get('ej-escape-words')).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringContaining('words_key: object key'),
    });
    for (const it of [escaping, escapingWords])
      expect(await fx.ledger.getRun(it.spec.imageId, it.spec.receiptId, runIdFor(it, 1))).toBeUndefined();
  });
});

describe('worker: the embeddings endpoint misbehaves', () => {
  it('429 then success; 500 forever fails the item retryably; a too-long input is split', async () => {
    const server = await startEmbeddingsServer({
      dimensions: DIMS,
      maxInputChars: 45,
      faults: { next429: 2, retryAfterSeconds: 0 },
    });
    try {
      const embedder = new OpenAIEmbedder({
        apiKey: 'k',
        baseURL: server.url,
        dimensions: DIMS,
        backoffBaseMs: 5,
        maxBackoffMs: 20,
        maxRetries: 2,
      });
      const r = generateReceipt(7200, { merchant: 0 });
      const item = workItem(await putReceipt(fx.store, fx.artifacts, r), 'ej-429');
      const d = deps({ embedder });
      await processBatch(d, [item]);
      expect(d.reporter.reports[0]!.outcome).toBe('Succeeded');
      expect(embedder.stats.rateLimited).toBe(2);
      expect(embedder.stats.splits).toBeGreaterThan(0); // row inputs (three lines) exceed 45 characters
      const rows = decodeDelta(
        await fx.store.getBuffer(fx.vectors, d.reporter.reports[0]!.result!.linesDeltaKey!),
      ).records;
      for (const x of rows) expect(Math.hypot(...x.embedding)).toBeCloseTo(1, 4);

      server.faults.next500 = 1000;
      const r2 = generateReceipt(7201);
      const item2 = workItem(await putReceipt(fx.store, fx.artifacts, r2), 'ej-500');
      const d2 = deps({ embedder });
      const out = await processBatch(d2, [item2]);
      expect(out.exitCode).toBe(0);
      expect(d2.reporter.reports[0]).toMatchObject({ outcome: 'Failed', reason: 'Transient' });
      expect(await fx.ledger.getRun(r2.imageId, r2.receiptId, runIdFor(item2, 1))).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});

describe('worker: labels from the ledger', () => {
  it('turns word labels into label metadata on words and rows', async () => {
    const r = generateReceipt(7300, { merchant: 4 });
    const item = workItem(await putReceipt(fx.store, fx.artifacts, r), 'ej-labels');
    const total = r.words.find((w) => w.text === 'TOTAL')!;
    const pad = (n: number) => String(n).padStart(5, '0');
    const sk = (label: string) =>
      `RECEIPT#${pad(r.receiptId)}#LINE#${pad(total.line_id)}#WORD#${pad(total.word_id)}#LABEL#${label}`;
    const pk = `IMAGE#${r.imageId}`;
    await fx.ledger.putItem({
      PK: pk,
      SK: sk('GRAND_TOTAL'),
      validation_status: 'VALID',
      timestamp_added: '2026-01-01T00:00:00Z',
    });
    await fx.ledger.putItem({
      PK: pk,
      SK: sk('SUBTOTAL'),
      validation_status: 'INVALID',
      timestamp_added: '2026-01-02T00:00:00Z',
    });
    const d = deps();
    await processBatch(d, [item]);
    const res = d.reporter.reports[0]!.result!;
    const word = decodeDelta(await fx.store.getBuffer(fx.vectors, res.wordsDeltaKey!)).records.find(
      (x) => x.metadata.line_id === total.line_id && x.metadata.word_id === total.word_id,
    )!;
    expect(word.metadata).toMatchObject({
      label_status: 'validated',
      valid_labels: 'GRAND_TOTAL',
      invalid_labels: 'SUBTOTAL',
      label_validated_at: '2026-01-01T00:00:00Z',
    });
    const row = decodeDelta(await fx.store.getBuffer(fx.vectors, res.linesDeltaKey!)).records.find((x) =>
      (JSON.parse(x.metadata.row_line_ids as string) as number[]).includes(total.line_id),
    )!;
    expect(row.metadata).toMatchObject({ label_status: 'validated', valid_labels: 'GRAND_TOTAL' });
  });
});

describe('worker: a later attempt of the same EmbeddingJob', () => {
  it('reports the run an earlier attempt wrote instead of writing a second one', async () => {
    const r = generateReceipt(7400);
    const base = { ...workItem(await putReceipt(fx.store, fx.artifacts, r), 'ej-attempts'), uid: 'uid-7400' };
    const first = deps();
    await processBatch(first, [{ ...base, attemptKey: 'ejw-attempt-1' }]);
    const second = deps();
    await processBatch(second, [{ ...base, attemptKey: 'ejw-attempt-2' }]);
    expect(second.reporter.reports[0]!.result!.runId).toBe(first.reporter.reports[0]!.result!.runId);
    expect(second.reporter.reports[0]!.result).toMatchObject({
      ...first.reporter.reports[0]!.result!,
      durationMs: expect.any(Number),
    });
    const runs = await fx.ledger.query(
      `IMAGE#${r.imageId}`,
      `RECEIPT#${String(r.receiptId).padStart(5, '0')}#COMPACTION_RUN#`,
    );
    expect(runs).toHaveLength(1);
  });
});

describe('worker: shutdown', () => {
  it('starts nothing once aborted, reports nothing for those items and exits 1', async () => {
    const item = workItem(await putReceipt(fx.store, fx.artifacts, generateReceipt(7500)), 'ej-abort');
    const stop = new AbortController();
    stop.abort();
    const d = deps({ signal: stop.signal });
    const out = await processBatch(d, [item]);
    expect(out.exitCode).toBe(1);
    expect(out.outcomes[0]).toMatchObject({ status: 'skipped', reported: false });
    expect(d.reporter.reports).toEqual([]);
    expect(await fx.store.list(fx.vectors, `lines/delta/${runIdFor(item, 1)}/`)).toEqual([]);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobResult } from '../../../core/contracts/embedding-job.js';
import { LocalEmbedder } from '../../../core/embedding/local-embedder.js';
import { DirectoryObjectStore } from '../../../core/local/dir-store.js';
import { SqliteLedger } from '../../../core/local/sqlite-ledger.js';
import { createLogger } from '../../../core/log.js';
import type { LinesIndexSource } from '../../../core/ports/lines-index.js';
import type { QueryHit, VectorStore } from '../../../core/ports/vector-store.js';
import { generateReceipt, putReceipt } from '../../../core/sample/index.js';
import { processBatch } from '../../../worker/batch.js';
import type { WorkerDeps } from '../../../worker/context.js';
import type { FailureReason, Reporter, WorkItem } from '../../../worker/work-item.js';

const ARTIFACTS = 'artifacts';
const VECTORS = 'vectors';
const log = createLogger('batch-test', 'silent');

/** A `lines` snapshot with no neighbour for anything; counts its requests, and whether it was closed. */
function emptySnapshot() {
  const calls = { query: 0, queryMany: 0, opened: 0, closed: 0 };
  const store = {
    query: async () => {
      calls.query++;
      return [] as QueryHit[];
    },
    queryMany: async (_c: string, embeddings: Float32Array[]) => {
      calls.queryMany++;
      return embeddings.map(() => [] as QueryHit[]);
    },
  } as unknown as VectorStore;
  const source: LinesIndexSource = {
    open: async () => {
      calls.opened++;
      return { version: 'v7', origin: 'volume', store, close: async () => void calls.closed++ };
    },
  };
  return { source, calls };
}

function memoryReporter() {
  const reports: { name: string; result?: JobResult; reason?: FailureReason }[] = [];
  const reporter: Reporter = {
    succeeded: async (item, result) => void reports.push({ name: item.name, result }),
    failed: async (item, f) => void reports.push({ name: item.name, reason: f.reason }),
  };
  return { reporter, reports };
}

let dir: string;
let store: DirectoryObjectStore;
let ledger: SqliteLedger;
let items: WorkItem[];
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'worker-batch-'));
  store = new DirectoryObjectStore(join(dir, 'objects'));
  ledger = SqliteLedger.open(join(dir, 'ledger.sqlite'));
  items = [];
  for (const seed of [11, 12]) {
    const m = await putReceipt(store, ARTIFACTS, generateReceipt(seed));
    const spec = {
      imageId: m.image_id,
      receiptId: m.receipt_id,
      artifactsBucket: ARTIFACTS,
      linesKey: m.lines_key,
      wordsKey: m.words_key,
    };
    items.push({ name: `ej-${seed}`, attemptKey: 1, spec });
  }
  items.push({
    ...items[0]!,
    name: 'ej-missing',
    spec: { ...items[0]!.spec, wordsKey: 'nowhere/words.ndjson' },
  });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function deps(over: Partial<WorkerDeps> = {}): WorkerDeps {
  return {
    store,
    ledger,
    embedder: new LocalEmbedder(16),
    vectorsBucket: VECTORS,
    reporter: memoryReporter().reporter,
    log,
    ...over,
  };
}

describe('processBatch', () => {
  it('ends each item in its own outcome, times every phase, and batches the merchant queries through queryMany', async () => {
    const snapshot = emptySnapshot();
    const { reporter, reports } = memoryReporter();
    const out = await processBatch(deps({ reporter, linesIndex: snapshot.source }), items);

    expect(out.outcomes.map((o) => [o.name, o.status, o.reported])).toEqual([
      ['ej-11', 'succeeded', true],
      ['ej-12', 'succeeded', true],
      ['ej-missing', 'failed', true],
    ]);
    expect(out.outcomes[2]!.reason).toBe('SourceMissing');
    expect(out.exitCode).toBe(0);
    const results = out.outcomes.flatMap((o) => (o.result ? [o.result] : []));
    expect(out.vectors).toBe(results.reduce((n, r) => n + r.rows + r.words, 0));
    expect(reports.map((r) => r.name).sort()).toEqual(['ej-11', 'ej-12', 'ej-missing']);
    for (const r of results) {
      expect(r.merchant).toBeUndefined();
      expect(r.linesDeltaKey).toBe(`lines/delta/${r.runId}/delta.arrow`);
      expect(await store.head(VECTORS, r.wordsDeltaKey!)).toBeDefined();
    }

    const phases = [
      'openIndex',
      'read',
      'embed',
      'indexWait',
      'merchant',
      'writeWait',
      'upload',
      'ledger',
      'report',
    ];
    expect(Object.keys(out.phaseMs).sort()).toEqual([...phases].sort());
    for (const p of phases) {
      const [from, to] = out.phaseSpanMs[p]!;
      expect(from).toBeLessThanOrEqual(to);
      expect(to).toBeLessThanOrEqual(out.durationMs + 1);
    }
    expect(out.merchantIndex).toEqual({ version: 'v7', origin: 'volume', openMs: out.phaseMs.openIndex });
    expect(snapshot.calls).toMatchObject({ opened: 1, closed: 1, query: 0 });
    expect(snapshot.calls.queryMany).toBeGreaterThan(0);
  });

  it('reports the run an earlier pod of the attempt wrote, with the same result, without writing again', async () => {
    const first = await processBatch(deps(), items.slice(0, 1));
    const firstResult = first.outcomes[0]!.result!;
    expect(firstResult.merchantReason).toBe('merchant resolution disabled');
    const put = store.put.bind(store);
    let puts = 0;
    store.put = (...args: Parameters<typeof put>) => {
      puts++;
      return put(...args);
    };
    const again = await processBatch(deps(), items.slice(0, 1));
    expect(puts).toBe(0);
    expect({ ...again.outcomes[0]!.result, durationMs: 0 }).toEqual({ ...firstResult, durationMs: 0 });
    expect(again.phaseMs.embed).toBeUndefined();
  });

  it('leaves the items not yet reading at shutdown unreported, for the retry', async () => {
    const stop = new AbortController();
    stop.abort();
    const { reporter, reports } = memoryReporter();
    const out = await processBatch(deps({ reporter, signal: stop.signal }), items);
    expect(out.outcomes.every((o) => o.status === 'skipped' && !o.reported)).toBe(true);
    expect(out.exitCode).toBe(1);
    expect(reports).toEqual([]);
  });
});

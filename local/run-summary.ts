import { similarity } from '../core/contracts/vector-distance.js';
import { parseVectorId, type Collection } from '../core/contracts/ids.js';
import { rerankByDocument, rerankPool } from '../core/embedding/rerank.js';
import { errorMessage } from '../core/errors.js';
import type { LocalJob } from '../core/local/job-table.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { QueryHit } from '../core/ports/vector-store.js';
import type { OverheadBreakdown } from './intervals.js';
import type { EmbedderKind } from './embedder.js';
import type { LocalPorts } from './home.js';
import { openSnapshotView } from './snapshot-view.js';

/**
 * What `embedctl local run` reports (its --json, and last-run.json in the home): counts from the job table and the
 * live snapshot, the failures, sample queries, and the time figures the run's observer (local/run-observer.ts) adds.
 */

export interface StageTime {
  /** Wall-clock time from the stage's start to its end (stages overlap: the pipeline streams). */
  wallMs: number;
  /** Time actually working, where known (summed over workers for embedding). */
  busyMs?: number;
}

export interface RunSummary {
  home: string;
  embedder: { model: string; dimensions: number; kind: EmbedderKind };
  /** Receipts uploaded and queued by this run. */
  submitted: number;
  /** Receipts of this run's input that were neither uploaded nor queued again: same content, job already there. */
  skipped: { done: number; queued: number };
  /** Every receipt of the home, plus those of this run's input rejected while the folder was read (as failed). */
  receipts: { total: number; succeeded: number; failed: number };
  vectors: Record<Collection, { snapshot: number; expected: number }>;
  merchants: { resolved: number; unresolved: number; byName: Record<string, number> };
  failures: { source: string; reason: string; message: string }[];
  deadLetters: { queue: string; reason: string; body: string }[];
  snapshot: Partial<Record<Collection, string>>;
  stages: Record<string, StageTime>;
  workers: { launched: number; failed: number };
  /** The compactor child: restarted after an unexpected exit (with backoff, at most COMPACTOR_MAX_RESTARTS times). */
  compactor: { restarts: number; lastExit?: string };
  queries: {
    title: string;
    collection: Collection;
    hits: { id: string; similarity: number; text: string | null; merchant?: string }[];
  }[];
  /**
   * Time in which embedding (any worker) or a Chroma merge (either compactor lane) was in progress, and the share of
   * the run (summary excluded) outside it.
   */
  overhead: { workMs: number; share: number; breakdown?: OverheadBreakdown };
  totalMs: number;
  complete: boolean;
  /** When not complete: what was still outstanding, and the compactor's last log lines. */
  stalled?: {
    jobs: string[];
    queues: Record<string, { visible: number; inFlight: number }>;
    compactorLog: string[];
  };
}

/**
 * The summary from the job table and the live snapshot (with sample queries when `queries`); its time figures
 * (totalMs, overhead) stay zero here: the run's observer fills them in.
 */
export async function summarize(
  ports: LocalPorts,
  embedder: Embedder,
  x: {
    embedderKind: EmbedderKind;
    submitted: number;
    skipped?: RunSummary['skipped'];
    /** Receipts of the input rejected while the folder was read (they are in `failures` already). */
    rejected?: number;
    failures: RunSummary['failures'];
    stages: Record<string, StageTime>;
    workers: RunSummary['workers'];
    complete: boolean;
    queries: boolean;
    sourceOf?: (name: string) => string | undefined;
  },
): Promise<RunSummary> {
  const jobs = ports.jobs.list();
  const succeeded = jobs.filter((j) => j.phase === 'Succeeded');
  const failed = jobs.filter((j) => j.phase === 'Failed');
  const byName: Record<string, number> = {};
  for (const j of succeeded)
    if (j.result?.merchant) byName[j.result.merchant] = (byName[j.result.merchant] ?? 0) + 1;
  const failures = [...x.failures];
  for (const j of failed) {
    failures.push({
      source: x.sourceOf?.(j.name) ?? describeJob(j),
      reason: j.reason ?? 'Failed',
      message: j.message ?? '',
    });
  }
  for (const j of succeeded) {
    for (const c of j.spec.collections) {
      if (j.compaction[c] === 'Failed') {
        failures.push({
          source: describeJob(j),
          reason: 'CompactionFailed',
          message: `${c}: ${j.compactionError ?? 'failed'}`,
        });
      }
    }
  }
  // An EMBED message refused at ingest (a bucket or key outside the allowed ones) is a receipt that failed too.
  const refusedAtIngest = ports.queues.embed.deadLetters().length;
  const deadLetters = Object.values(ports.queues).flatMap((q) =>
    q.deadLetters().map((d) => ({ queue: d.queue, reason: d.reason, body: d.body.slice(0, 200) })),
  );
  const expected: Record<Collection, number> = {
    lines: succeeded.reduce((s, j) => s + (j.result?.rows ?? 0), 0),
    words: succeeded.reduce((s, j) => s + (j.result?.words ?? 0), 0),
  };
  const view = await openSnapshotView(ports.paths.volume, ports.paths.scratch);
  const queries: RunSummary['queries'] = [];
  const vectors = {} as RunSummary['vectors'];
  try {
    for (const c of ['lines', 'words'] as const) {
      const store = view.store(c);
      vectors[c] = { snapshot: store ? await store.count(c) : 0, expected: expected[c] };
    }
    if (x.queries) queries.push(...(await demoQueries(view, embedder, succeeded)));
  } finally {
    await view.close();
  }
  return {
    home: ports.paths.root,
    embedder: {
      model: embedder.model,
      dimensions: embedder.dimensions,
      kind: x.embedderKind,
    },
    submitted: x.submitted,
    skipped: x.skipped ?? { done: 0, queued: 0 },
    receipts: {
      total: jobs.length + (x.rejected ?? 0) + refusedAtIngest,
      succeeded: succeeded.length,
      failed: failed.length + (x.rejected ?? 0) + refusedAtIngest,
    },
    vectors,
    merchants: {
      resolved: succeeded.filter((j) => j.result?.merchant).length,
      unresolved: succeeded.filter((j) => !j.result?.merchant).length,
      byName,
    },
    failures,
    deadLetters,
    snapshot: view.versions,
    stages: x.stages,
    workers: x.workers,
    compactor: { restarts: 0 },
    queries,
    overhead: { workMs: 0, share: 0 },
    totalMs: 0,
    complete: x.complete,
  };
}

function describeJob(j: LocalJob): string {
  return `${j.name} (image ${j.spec.imageId}, receipt ${j.spec.receiptId})`;
}

/** "Receipts like this one", "lines like 'TOTAL'", "words like 'milk'": proof the index answers sensibly. */
async function demoQueries(
  view: Awaited<ReturnType<typeof openSnapshotView>>,
  embedder: Embedder,
  succeeded: LocalJob[],
): Promise<RunSummary['queries']> {
  const out: RunSummary['queries'] = [];
  const lines = view.store('lines');
  const words = view.store('words');
  const hits = (h: (QueryHit & { similarity?: number })[]) =>
    h.map((x) => ({
      id: x.id,
      similarity: Math.round((x.similarity ?? similarity(x.distance)) * 1000) / 1000,
      text: x.document,
      ...(typeof x.metadata?.merchant_name === 'string' ? { merchant: x.metadata.merchant_name } : {}),
    }));
  try {
    // A receipt with a look-alike among the others, so "like this one" has something to find. Which merchants got
    // resolved depends on timing (the snapshot grows while workers run), so receipts of a merchant seen more than
    // once are tried first, then any; the first few candidates are queried and the closest match is shown.
    const perMerchant = new Map<string, number>();
    for (const j of succeeded)
      if (j.result?.merchant)
        perMerchant.set(j.result.merchant, (perMerchant.get(j.result.merchant) ?? 0) + 1);
    const repeated = (j: LocalJob) => (perMerchant.get(j.result?.merchant ?? '') ?? 0) > 1;
    const candidates = [...succeeded.filter(repeated), ...succeeded.filter((j) => !repeated(j))].slice(0, 8);
    let best: RunSummary['queries'][number] | undefined;
    for (const job of lines ? candidates : []) {
      const found = await receiptsLike(lines!, job);
      if (!found) continue;
      const query = { ...found, hits: hits(found.hits) };
      if (!best || (query.hits[0]?.similarity ?? 0) > (best.hits[0]?.similarity ?? 0)) best = query;
      if ((best.hits[0]?.similarity ?? 0) >= 0.99) break;
    }
    if (best) out.push(best);
    // Ranked as `embedctl query` ranks free text (core/embedding/rerank.ts).
    const [total, milk] = await embedder.embed(['TOTAL', 'milk']);
    const like = async (store: NonNullable<typeof lines>, c: Collection, v: Float32Array) =>
      hits(await rerankByDocument(embedder, v, await store.query(c, v, rerankPool(3)), 3));
    if (lines)
      out.push({
        title: `lines like 'TOTAL'`,
        collection: 'lines',
        hits: await like(lines, 'lines', total!),
      });
    if (words)
      out.push({ title: `words like 'milk'`, collection: 'words', hits: await like(words, 'words', milk!) });
  } catch (err) {
    out.push({ title: `queries failed: ${errorMessage(err)}`, collection: 'lines', hits: [] });
  }
  return out;
}

/** The receipt's top row (its merchant header: y = 0 is the bottom) and the nearest top rows of *other* receipts. */
async function receiptsLike(
  lines: NonNullable<ReturnType<Awaited<ReturnType<typeof openSnapshotView>>['store']>>,
  job: LocalJob,
): Promise<{ title: string; collection: 'lines'; hits: QueryHit[] } | undefined> {
  const prefix = `IMAGE#${job.spec.imageId}#RECEIPT#${String(job.spec.receiptId).padStart(5, '0')}#LINE#`;
  const own = await lines.get('lines', {
    where: { $and: [{ image_id: job.spec.imageId }, { receipt_id: job.spec.receiptId }] },
    include: ['embeddings', 'documents', 'metadatas'],
  });
  let i = -1;
  own.metadatas.forEach((m, k) => {
    if (own.ids[k]!.startsWith(prefix) && (i < 0 || Number(m?.y ?? 0) > Number(own.metadatas[i]?.y ?? 0)))
      i = k;
  });
  if (i < 0 || !own.embeddings?.[i]) return undefined;
  const found = await lines.query('lines', own.embeddings[i]!, 8);
  return {
    title: `receipts like ${job.spec.imageId}#${job.spec.receiptId} (row "${own.documents[i] ?? ''}")`,
    collection: 'lines',
    hits: found.filter((h) => parseVectorId(h.id)?.imageId !== job.spec.imageId).slice(0, 3),
  };
}

import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { assertArtifactLocation } from '../core/contracts/artifact-location.js';
import { CompactionRunItem, newCompactionRun } from '../core/contracts/compaction-run.js';
import type { EmbeddingJobSpec, JobResult } from '../core/contracts/embedding-job.js';
import { COLLECTIONS, deltaKey, type Collection } from '../core/contracts/ids.js';
import { encodeDelta } from '../core/delta/arrow-delta.js';
import { assertKeyInBucket, errorMessage, InputError, PipelineError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { LinesIndex, LinesIndexSource } from '../core/merchant/lines-index.js';
import type { PlaceLookup } from '../core/merchant/place-lookup.js';
import { resolveMerchant, type MerchantResult } from '../core/merchant/resolver.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { VectorRecord, VectorStore } from '../core/ports/vector-store.js';
import { applyMerchant, buildReceiptItems, type EmbeddingItem } from '../core/receipt/embedding-inputs.js';
import type { WordLabel } from '../core/receipt/labels.js';
import { MAX_FILE_BYTES, readLines, readWords } from '../core/receipt/ndjson-reader.js';
import type { LineRow, WordRow } from '../core/contracts/ndjson-rows.js';
import type { ReceiptItems } from '../core/receipt/embedding-inputs.js';
import { batchedQueries } from './batched-queries.js';
import { Semaphore } from '../core/concurrency.js';
import { runIdFor } from './run-id.js';

/** Receipts read + validated at once (`jobConcurrency`) unless configured. */
export const DEFAULT_JOB_CONCURRENCY = 16;

/** One receipt to embed: an EmbeddingJob (cloud) or a local job. */
export interface WorkItem {
  /** EmbeddingJob name (or local job id); recorded in the CompactionRun as `job_name`. */
  name: string;
  uid?: string;
  /** Identifies the attempt (worker Job name, or an attempt number): same attempt → same run id. */
  attemptKey: string | number;
  spec: Pick<EmbeddingJobSpec, 'imageId' | 'receiptId' | 'artifactsBucket' | 'linesKey' | 'wordsKey'> &
    Partial<Pick<EmbeddingJobSpec, 'collections' | 'model'>>;
}

export type FailureReason = 'BadInput' | 'SourceMissing' | 'Transient';

export interface Reporter {
  succeeded(item: WorkItem, result: JobResult): Promise<void>;
  failed(item: WorkItem, failure: { reason: FailureReason; message: string }): Promise<void>;
}

export interface WorkerDeps {
  store: ObjectStore;
  ledger: Ledger;
  embedder: Embedder;
  /** Embedder for a job whose spec names another model; without it such a job fails as BadInput. */
  embedderFor?: (model: string) => Embedder;
  vectorsBucket: string;
  /**
   * Buckets an item may read (ARTIFACTS_BUCKET + ARTIFACTS_BUCKETS_ALLOWED); ingest checks this too, the worker again
   * because an EmbeddingJob can be created by hand. Unset (local mode): only the bucket's and keys' shape is checked.
   */
  artifactBuckets?: readonly string[];
  /** The live `lines` snapshot for merchant resolution; undefined disables resolution. */
  linesIndex?: LinesIndexSource;
  placeLookup?: PlaceLookup;
  reporter: Reporter;
  log: Logger;
  /** Receipts reading + validating at once. Default 16. */
  jobConcurrency?: number;
  /** Receipts writing their deltas and CompactionRun at once. Default: `jobConcurrency`. */
  writeConcurrency?: number;
  /** Read word labels from the ledger for label metadata. Default true. */
  readLabels?: boolean;
  /** Stop starting new items (already running ones finish). */
  signal?: AbortSignal;
  now?: () => Date;
}

export interface JobOutcome {
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  result?: JobResult;
  reason?: FailureReason;
  message?: string;
  /** The reporter accepted the outcome. */
  reported: boolean;
}

export interface BatchOutcome {
  outcomes: JobOutcome[];
  /** 0: every item reported; 1: some item has no report (retry). See controller/README.md. */
  exitCode: 0 | 1;
  durationMs: number;
  vectors: number;
  merchantIndex?: { version: string; origin: string; openMs: number };
  /** Summed over items (items overlap, so these add up to more than durationMs): where the time goes. */
  phaseMs: Record<string, number>;
  /** Per phase: [first start, last end] in ms since the batch started (when each phase ran, on the wall clock). */
  phaseSpanMs: Record<string, [number, number]>;
}

/**
 * Processes a batch of receipts: for each item, read + validate both NDJSON files, build embedding inputs, embed,
 * resolve the merchant against the live `lines` snapshot (opened once, shared), write one Arrow delta per collection,
 * write the CompactionRun row (conditional), then report. Items are independent: one failing never stops the others.
 */
export async function processBatch(deps: WorkerDeps, items: WorkItem[]): Promise<BatchOutcome> {
  const t0 = performance.now();
  let opened: LinesIndex | undefined;
  let openMs = 0;
  let indexPromise: Promise<VectorStore | { unavailable: string }> | undefined;
  const index = () =>
    (indexPromise ??= (async () => {
      if (!deps.linesIndex) return { unavailable: 'merchant resolution disabled' };
      const s = performance.now();
      try {
        opened = await deps.linesIndex.open();
        openMs = performance.now() - s;
        time('openIndex', openMs);
        return opened ? batchedQueries(opened.store) : { unavailable: 'no lines snapshot yet' };
      } catch (err) {
        deps.log.warn({ err: errorMessage(err) }, 'lines snapshot unavailable');
        return { unavailable: `lines snapshot unavailable: ${errorMessage(err)}` };
      }
    })());

  const outcomes: JobOutcome[] = new Array<JobOutcome>(items.length);
  let vectors = 0;
  const phaseMs: Record<string, number> = {};
  const spans: Record<string, [number, number]> = {};
  const time = (phase: string, ms: number) => {
    phaseMs[phase] = (phaseMs[phase] ?? 0) + ms;
    const end = performance.now() - t0;
    const span = (spans[phase] ??= [end - ms, end]);
    span[0] = Math.min(span[0], end - ms);
    span[1] = Math.max(span[1], end);
  };
  const concurrency = Math.max(1, deps.jobConcurrency ?? DEFAULT_JOB_CONCURRENCY);
  const sems = {
    read: new Semaphore(concurrency),
    write: new Semaphore(Math.max(1, deps.writeConcurrency ?? concurrency)),
  };
  // Open the snapshot while the first receipts are read (it takes a copy and a Chroma start).
  if (deps.linesIndex && items.length > 0) void index();
  try {
    // Every item runs as its own pipeline: read (bounded) → embed → merchant → write (bounded) → report. A receipt
    // hands its inputs to the embedder as soon as they are built; the embedder coalesces the inputs of every receipt
    // waiting at that moment into shared requests (up to its concurrency in flight), so requests stay full while
    // later receipts are still being read and earlier ones are already being written.
    await Promise.all(
      items.map(async (item, i) => {
        const o = await processItem(deps, item, index, sems, time);
        if (o.result) vectors += o.result.rows + o.result.words;
        outcomes[i] = o;
      }),
    );
  } finally {
    // A snapshot still opening (every item failed before it was needed) is closed too, once it is open: its Chroma
    // server would otherwise keep the worker process alive.
    await indexPromise?.catch(() => undefined);
    await opened
      ?.close()
      .catch((err: unknown) => deps.log.warn({ err: errorMessage(err) }, 'closing lines snapshot'));
  }
  const o = opened as LinesIndex | undefined;
  return {
    outcomes,
    exitCode: outcomes.every((x) => x.reported) ? 0 : 1,
    durationMs: Math.round(performance.now() - t0),
    vectors,
    phaseMs: Object.fromEntries(Object.entries(phaseMs).map(([k, v]) => [k, Math.round(v)])),
    phaseSpanMs: Object.fromEntries(
      Object.entries(spans).map(([k, [a, b]]) => [k, [Math.round(a), Math.round(b)] as [number, number]]),
    ),
    ...(o ? { merchantIndex: { version: o.version, origin: o.origin, openMs: Math.round(openMs) } } : {}),
  };
}

async function processItem(
  deps: WorkerDeps,
  item: WorkItem,
  index: () => Promise<VectorStore | { unavailable: string }>,
  sems: { read: Semaphore; write: Semaphore },
  time: (phase: string, ms: number) => void,
): Promise<JobOutcome> {
  const log = deps.log.child({ ej: item.name });
  let result: JobResult;
  const phases: Phases = {
    time,
    read: (fn) =>
      sems.read.run(() => {
        if (deps.signal?.aborted) throw new ShuttingDown();
        return fn();
      }),
    write: (fn) => sems.write.run(fn),
  };
  try {
    result = await embedItem(deps, item, index, log, phases);
  } catch (err) {
    if (err instanceof ShuttingDown) {
      return { name: item.name, status: 'skipped', reported: false, message: 'shutting down' };
    }
    const reason: FailureReason =
      err instanceof PipelineError && err.reason === 'BadInput'
        ? 'BadInput'
        : err instanceof PipelineError && err.reason === 'SourceMissing'
          ? 'SourceMissing'
          : 'Transient';
    const message = errorMessage(err);
    log.warn({ reason, err: message }, 'job failed');
    const reported = await report(log, () => deps.reporter.failed(item, { reason, message }));
    return { name: item.name, status: 'failed', reason, message, reported };
  }
  log.info({ ...result }, 'job succeeded');
  const tReport = performance.now();
  const reported = await report(log, () => deps.reporter.succeeded(item, result));
  time('report', performance.now() - tReport);
  return { name: item.name, status: 'succeeded', result, reported };
}

async function report(log: Logger, send: () => Promise<void>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'report failed; the item stays unreported');
    return false;
  }
}

class ShuttingDown extends Error {}

interface Phases {
  /** Adds milliseconds to a named phase total (BatchOutcome.phaseMs). */
  time(phase: string, ms: number): void;
  read<T>(fn: () => Promise<T>): Promise<T>;
  write<T>(fn: () => Promise<T>): Promise<T>;
}

/** Extra CompactionRun attributes that let a rerun report the same result without redoing the work. */
interface RunExtras {
  job_uid?: string;
  job_lines: number;
  job_rows: number;
  job_words: number;
  merchant_name?: string;
  merchant_reason: string;
  merchant_tier?: string;
}

async function embedItem(
  deps: WorkerDeps,
  item: WorkItem,
  index: () => Promise<VectorStore | { unavailable: string }>,
  log: Logger,
  phases: Phases,
): Promise<JobResult> {
  const t0 = performance.now();
  const { spec } = item;
  const runId = runIdFor(item, item.attemptKey);
  const ids = { imageId: spec.imageId, receiptId: spec.receiptId };
  const collections = new Set<Collection>(spec.collections ?? COLLECTIONS);
  const embedder = pickEmbedder(deps, spec.model);

  // Phase 1 (I/O bound, `jobConcurrency` at once): read, validate, build the inputs.
  const prepared = await phases.read(async () => {
    const tRead = performance.now();
    try {
      return await prepare();
    } finally {
      phases.time('read', performance.now() - tRead);
    }
  });
  async function prepare() {
    // A run already written for this attempt (pod killed after the ledger write): report it, write nothing.
    const [existingR, streamsR, labelsR] = await Promise.allSettled([
      findExistingRun(deps.ledger, item, runId),
      openBoth(deps.store, spec, deps.artifactBuckets),
      deps.readLabels === false ? Promise.resolve([]) : loadLabels(deps.ledger, spec.imageId, spec.receiptId),
    ]);
    if (streamsR.status === 'fulfilled' && (existingR.status !== 'fulfilled' || existingR.value)) {
      for (const st of streamsR.value) st.destroy();
    }
    if (existingR.status === 'rejected') throw existingR.reason;
    if (existingR.value) return { existing: existingR.value, lines: undefined };
    if (streamsR.status === 'rejected') throw streamsR.reason;
    if (labelsR.status === 'rejected') {
      for (const st of streamsR.value) st.destroy();
      throw labelsR.reason;
    }
    const [linesStream, wordsStream] = streamsR.value;
    const labels = labelsR.value;
    let lines;
    let words;
    try {
      lines = await readLines(linesStream, ids, basename(spec.linesKey) || 'lines.ndjson');
      words = await readWords(
        wordsStream,
        ids,
        new Set(lines.map((l) => l.line_id)),
        basename(spec.wordsKey) || 'words.ndjson',
      );
    } finally {
      linesStream.destroy();
      wordsStream.destroy();
    }
    const items = buildReceiptItems({ ...ids, lines, words, labels });
    if (collections.has('lines') && items.lines.length === 0) {
      throw new InputError('no line to embed (every line is noise)', { file: basename(spec.linesKey) });
    }
    if (collections.has('words') && items.words.length === 0) {
      throw new InputError('no word to embed (every word is noise)', { file: basename(spec.wordsKey) });
    }
    return { existing: undefined, lines, words, items };
  }
  if (prepared.lines === undefined) {
    log.info({ runId: prepared.existing.run_id }, 'run already recorded for this EmbeddingJob; reporting it');
    return resultFromRun(prepared.existing, prepared.existing.run_id, t0);
  }
  const { lines, words, items } = prepared;

  // Phase 2: embed at once; the embedder packs these inputs with those of every other receipt waiting now.
  const tEmbed = performance.now();
  const [rowVectors, wordVectors] = await Promise.all([
    embedder.embed(items.lines.map((i) => i.input)),
    collections.has('words') ? embedder.embed(items.words.map((i) => i.input)) : Promise.resolve([]),
  ]);
  const embedMs = performance.now() - tEmbed;
  phases.time('embed', embedMs);
  return finishItem(
    deps,
    item,
    {
      runId,
      ids,
      collections,
      embedder,
      lines,
      words,
      items,
      rowVectors,
      wordVectors,
      embedMs,
      t0,
      phases,
    },
    index,
    log,
  );
}

/** Phase 3: merchant (queries batched across receipts), then deltas and CompactionRun (bounded, I/O). */
async function finishItem(
  deps: WorkerDeps,
  item: WorkItem,
  p: {
    runId: string;
    ids: { imageId: string; receiptId: number };
    collections: Set<Collection>;
    embedder: Embedder;
    lines: LineRow[];
    words: WordRow[];
    items: ReceiptItems;
    rowVectors: Float32Array[];
    wordVectors: Float32Array[];
    embedMs: number;
    t0: number;
    phases: Phases;
  },
  index: () => Promise<VectorStore | { unavailable: string }>,
  log: Logger,
): Promise<JobResult> {
  const {
    runId,
    ids,
    collections,
    embedder,
    lines,
    words,
    items,
    rowVectors,
    wordVectors,
    embedMs,
    t0,
    phases,
  } = p;
  const { time } = phases;
  const tMerchant = performance.now();
  const { spec } = item;

  const idx = await index();
  time('indexWait', performance.now() - tMerchant);
  const merchant: MerchantResult = await resolveMerchant({
    receipt: { ...ids, lines, words },
    items,
    rowVectors,
    index: idx,
    placeLookup: deps.placeLookup,
    log,
  });
  applyMerchant(items, merchant.name);
  time('merchant', performance.now() - tMerchant);
  // What went into each collection: nothing for one the job left out (its inputs are built, and its rows embedded
  // for merchant resolution, but not written).
  const rows = collections.has('lines') ? items.lines.length : 0;
  const wordCount = collections.has('words') ? items.words.length : 0;
  const tQueued = performance.now();
  const { deltas, created } = await phases.write(async () => {
    time('writeWait', performance.now() - tQueued);
    const tUpload = performance.now();

    // Only the collections the job asked for: a collection left out of `spec.collections` gets no delta and no
    // fields in the CompactionRun, so nothing is queued or compacted for it (an empty delta would FAIL the run).
    const wanted = COLLECTIONS.filter((c) => collections.has(c));
    const records: Record<Collection, () => VectorRecord[]> = {
      lines: () => toRecords(items.lines, rowVectors),
      words: () => toRecords(items.words, wordVectors),
    };
    const deltas: Partial<Record<Collection, { key: string; sha256: string; vectors: number }>> = {};
    await Promise.all(
      wanted.map(async (c) => {
        const recs = records[c]();
        const { bytes, sha256 } = encodeDelta(
          { collection: c, runId, dimensions: embedder.dimensions, model: embedder.model },
          recs,
        );
        const key = deltaKey(c, runId);
        await deps.store.put(deps.vectorsBucket, key, bytes, {
          contentType: 'application/vnd.apache.arrow.file',
          metadata: {
            run_id: runId,
            collection: c,
            sha256,
            vectors: String(recs.length),
            image_id: spec.imageId,
            receipt_id: String(spec.receiptId),
            job: item.name,
          },
        });
        deltas[c] = { key, sha256, vectors: recs.length };
      }),
    );

    const extras: RunExtras = {
      ...(item.uid ? { job_uid: item.uid } : {}),
      job_lines: lines.length,
      job_rows: rows,
      job_words: wordCount,
      ...(merchant.name ? { merchant_name: merchant.name } : {}),
      merchant_reason: merchant.reason,
      ...(merchant.tier ? { merchant_tier: merchant.tier } : {}),
    };
    const run = {
      ...newCompactionRun({
        runId,
        ...ids,
        jobName: item.name,
        model: embedder.model,
        dimensions: embedder.dimensions,
        deltas,
        now: deps.now?.(),
      }),
      ...extras,
    };
    time('upload', performance.now() - tUpload);
    const tLedger = performance.now();
    const created = await deps.ledger.putRunIfAbsent(run);
    time('ledger', performance.now() - tLedger);
    return { deltas, created };
  });
  if (!created) {
    // Another pod of the same attempt got there first; the row in the ledger is what the compactor will read.
    const other = await deps.ledger.getRun(spec.imageId, spec.receiptId, runId);
    log.warn({ runId }, 'CompactionRun already existed (concurrent pod of the same attempt)');
    if (other) return resultFromRun(other, runId, t0);
  }
  log.debug({ runId, embedMs: Math.round(embedMs) }, 'deltas and run written');
  return {
    runId,
    lines: lines.length,
    rows,
    words: wordCount,
    ...(deltas.lines ? { linesDeltaKey: deltas.lines.key } : {}),
    ...(deltas.words ? { wordsDeltaKey: deltas.words.key } : {}),
    ...(merchant.name ? { merchant: merchant.name } : {}),
    merchantReason: merchant.reason,
    durationMs: Math.round(performance.now() - t0),
  };
}

function pickEmbedder(deps: WorkerDeps, model: string | undefined): Embedder {
  if (!model || model === deps.embedder.model) return deps.embedder;
  if (deps.embedderFor) return deps.embedderFor(model);
  throw new PipelineError(
    'BadInput',
    `model ${model} is not available in this worker (it embeds with ${deps.embedder.model})`,
  );
}

/** Opens both objects at once (a missing one is SourceMissing); never leaks the other stream. */
async function openBoth(
  store: ObjectStore,
  spec: WorkItem['spec'],
  allowed: readonly string[] | undefined,
): Promise<[Readable, Readable]> {
  // A key that leaves its bucket is the input's fault in every store (S3 and the local directory): BadInput, once.
  assertKeyInBucket(spec.artifactsBucket, spec.linesKey, 'lines_key');
  assertKeyInBucket(spec.artifactsBucket, spec.wordsKey, 'words_key');
  // Then the bucket (a plain name on the allowlist, never an ARN) and the key length.
  assertArtifactLocation(
    { bucket: spec.artifactsBucket, linesKey: spec.linesKey, wordsKey: spec.wordsKey },
    allowed,
    { bucket: 'spec.artifactsBucket', linesKey: 'spec.linesKey', wordsKey: 'spec.wordsKey' },
  );
  // Sized before reading: a file over the NDJSON limit is BadInput without a byte of it downloaded.
  const results = await Promise.allSettled([
    store.getStream(spec.artifactsBucket, spec.linesKey, { maxBytes: MAX_FILE_BYTES }),
    store.getStream(spec.artifactsBucket, spec.wordsKey, { maxBytes: MAX_FILE_BYTES }),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of results) if (r.status === 'fulfilled') r.value.destroy();
    throw (failed as PromiseRejectedResult).reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<Readable>).value) as [Readable, Readable];
}

function toRecords(items: EmbeddingItem[], vectors: Float32Array[]): VectorRecord[] {
  return items.map((it, i) => ({
    id: it.id,
    document: it.document,
    metadata: it.metadata,
    embedding: vectors[i]!,
  }));
}

function resultFromRun(run: CompactionRunItem, runId: string, t0: number): JobResult {
  const x = run as CompactionRunItem & Partial<RunExtras>;
  return {
    runId,
    lines: x.job_lines ?? 0,
    rows: x.job_rows ?? run.lines_vectors ?? 0,
    words: x.job_words ?? run.words_vectors ?? 0,
    ...(run.lines_delta_key ? { linesDeltaKey: run.lines_delta_key } : {}),
    ...(run.words_delta_key ? { wordsDeltaKey: run.words_delta_key } : {}),
    ...(x.merchant_name ? { merchant: x.merchant_name } : {}),
    merchantReason: x.merchant_reason ?? '',
    durationMs: Math.round(performance.now() - t0),
  };
}

/**
 * A run this EmbeddingJob already wrote: the one of this attempt, or — when the job has a uid — one of an earlier
 * attempt whose pod died after the ledger write but before its report (neither collection FAILED). Reporting it
 * instead of embedding again keeps one CompactionRun per EmbeddingJob across attempts.
 */
async function findExistingRun(
  ledger: Ledger,
  item: WorkItem,
  runId: string,
): Promise<CompactionRunItem | undefined> {
  const { imageId, receiptId } = item.spec;
  if (!item.uid) return ledger.getRun(imageId, receiptId, runId);
  const rows = await ledger.query(
    `IMAGE#${imageId}`,
    `RECEIPT#${String(receiptId).padStart(5, '0')}#COMPACTION_RUN#`,
  );
  const runs = rows.map((r) => CompactionRunItem.safeParse(r)).flatMap((r) => (r.success ? [r.data] : []));
  return (
    runs.find((r) => r.run_id === runId) ??
    runs.find((r) => r.job_uid === item.uid && r.lines_state !== 'FAILED' && r.words_state !== 'FAILED')
  );
}

/** Word labels of the receipt from the ledger (SK `RECEIPT#…#LINE#…#WORD#…#LABEL#…`). */
export async function loadLabels(ledger: Ledger, imageId: string, receiptId: number): Promise<WordLabel[]> {
  const items = await ledger.query(`IMAGE#${imageId}`, `RECEIPT#${String(receiptId).padStart(5, '0')}#LINE#`);
  const out: WordLabel[] = [];
  for (const it of items) {
    const m = /#LINE#(\d{5})#WORD#(\d{5})#LABEL#(.+)$/.exec(it.SK);
    if (!m) continue;
    out.push({
      line_id: Number(m[1]),
      word_id: Number(m[2]),
      label: m[3]!,
      validation_status: typeof it.validation_status === 'string' ? it.validation_status : 'NONE',
      ...(typeof it.timestamp_added === 'string' ? { timestamp_added: it.timestamp_added } : {}),
      ...(typeof it.label_proposed_by === 'string' ? { label_proposed_by: it.label_proposed_by } : {}),
    });
  }
  return out;
}

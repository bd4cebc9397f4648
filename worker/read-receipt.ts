import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { assertArtifactLocation } from '../core/contracts/artifact-location.js';
import type { CompactionRunItem } from '../core/contracts/compaction-run.js';
import { assertKeyInBucket, InputError } from '../core/errors.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import { buildReceiptItems, type ReceiptInput, type ReceiptItems } from '../core/receipt/embedding-inputs.js';
import type { WordLabel } from '../core/receipt/labels.js';
import { MAX_FILE_BYTES, readLines, readWords } from '../core/receipt/ndjson-reader.js';
import type { ItemContext, WorkerDeps } from './context.js';
import { findExistingRun } from './run-record.js';
import type { WorkItem } from './work-item.js';

/** A receipt read and validated, with its embedding inputs built. */
export interface ReadReceipt {
  receipt: ReceiptInput;
  items: ReceiptItems;
}

/** What reading an item found: its receipt, or the run an earlier pod of this job already wrote. */
export type ReadOutcome = { existing: CompactionRunItem } | ({ existing?: undefined } & ReadReceipt);

/**
 * Reads and validates both NDJSON files and builds the embedding inputs; the run lookup, both downloads and the
 * labels go at once. A run already written for this job (pod killed after the ledger write) wins: nothing is read.
 */
export async function readReceipt(
  deps: Pick<WorkerDeps, 'store' | 'ledger' | 'artifactBuckets' | 'readLabels'>,
  ctx: ItemContext,
): Promise<ReadOutcome> {
  const { item, ids, collections } = ctx;
  const { spec } = item;
  const [existingR, streamsR, labelsR] = await Promise.allSettled([
    findExistingRun(deps.ledger, item, ctx.runId),
    openBoth(deps.store, spec, deps.artifactBuckets),
    deps.readLabels === false ? Promise.resolve([]) : loadLabels(deps.ledger, spec.imageId, spec.receiptId),
  ]);
  if (streamsR.status === 'fulfilled' && (existingR.status !== 'fulfilled' || existingR.value)) {
    for (const st of streamsR.value) st.destroy();
  }
  if (existingR.status === 'rejected') throw existingR.reason;
  if (existingR.value) return { existing: existingR.value };
  if (streamsR.status === 'rejected') throw streamsR.reason;
  if (labelsR.status === 'rejected') {
    for (const st of streamsR.value) st.destroy();
    throw labelsR.reason;
  }
  const [linesStream, wordsStream] = streamsR.value;
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
  const items = buildReceiptItems({ ...ids, lines, words, labels: labelsR.value });
  if (collections.has('lines') && items.lines.length === 0) {
    throw new InputError('no line to embed (every line is noise)', { file: basename(spec.linesKey) });
  }
  if (collections.has('words') && items.words.length === 0) {
    throw new InputError('no word to embed (every word is noise)', { file: basename(spec.wordsKey) });
  }
  return { receipt: { ...ids, lines, words }, items };
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

/** Word labels of the receipt from the ledger (SK `RECEIPT#…#LINE#…#WORD#…#LABEL#…`). */
async function loadLabels(ledger: Ledger, imageId: string, receiptId: number): Promise<WordLabel[]> {
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

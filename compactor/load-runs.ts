import {
  runCollection,
  type CompactionRunItem,
  type RunCollection,
} from '../core/contracts/compaction-run.js';
import { receiptPrefix, type Collection } from '../core/contracts/ids.js';
import { decodeDelta, MAX_DELTA_BYTES } from '../core/delta/arrow-delta.js';
import { ObjectTooLargeError, PipelineError } from '../core/errors.js';
import { mapLimit } from '../core/concurrency.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import type { RunRef } from './plan.js';
import { deletedSince } from './tombstones.js';

export interface RunRow {
  ref: RunRef;
  item: CompactionRunItem;
  rc: RunCollection;
}

export interface GoodRun {
  ref: RunRef;
  item: CompactionRunItem;
  records: VectorRecord[];
}

export interface BadRun {
  ref: RunRef;
  error: string;
}

/**
 * The run rows of a batch, concurrently. A run already decided for this collection, or not carrying it (a job
 * limited to the other collection), is a no-op; a run whose receipt was deleted after the run was created FAILs with
 * `ReceiptDeleted` instead of bringing the receipt's vectors back.
 */
export async function loadRunRows(
  ledger: Ledger,
  refs: RunRef[],
  c: Collection,
): Promise<{ rows: RunRow[]; bad: BadRun[] }> {
  const out = await mapLimit(refs, 8, async (ref): Promise<RunRow | BadRun | undefined> => {
    const item = await ledger.getRun(ref.imageId, ref.receiptId, ref.runId);
    if (!item) return { ref, error: 'CompactionRun row not found' };
    const rc = runCollection(item, c);
    if (!rc || rc.state === 'COMPLETED' || rc.state === 'FAILED') return undefined;
    const deletedAt = await deletedSince(ledger, ref.imageId, ref.receiptId, item.created_at);
    if (deletedAt)
      return {
        ref,
        error: `ReceiptDeleted: the receipt was deleted at ${deletedAt}, after this run was created`,
      };
    return { ref, item, rc };
  });
  const rows: RunRow[] = [];
  const bad: BadRun[] = [];
  for (const r of out) {
    if (r && 'error' in r) bad.push(r);
    else if (r) rows.push(r);
  }
  return { rows, bad };
}

/** Bytes a run's delta holds in memory once decoded: its vectors (float32) plus a document and metadata each. */
export function deltaBytes(row: RunRow, dimensions: number): number {
  return row.rc.vectors * ((row.item.dimensions ?? dimensions) * 4 + 512);
}

/** Consecutive groups of runs whose deltas together stay below `maxBytes` (a larger run is a group of its own). */
export function groupByBytes(rows: RunRow[], maxBytes: number, dimensions: number): RunRow[][] {
  const groups: RunRow[][] = [];
  let bytes = 0;
  for (const row of rows) {
    const b = deltaBytes(row, dimensions);
    if (groups.length === 0 || bytes + b > maxBytes) {
      groups.push([]);
      bytes = 0;
    }
    groups.at(-1)!.push(row);
    bytes += b;
  }
  return groups;
}

/**
 * Downloads, verifies and decodes one group's deltas (concurrently), then checks them in order. A bad delta
 * (checksum, truncation, size, missing object, wrong collection or dimension, foreign ids, empty) FAILs only its run;
 * any other error throws (the batch is retried, and bisected to find the culprit).
 */
export async function loadDeltas(
  objects: ObjectStore,
  bucket: string,
  rows: RunRow[],
  c: Collection,
  dimensions: number | undefined,
  hooks: CrashHooks = {},
): Promise<{ good: GoodRun[]; bad: BadRun[]; dimensions: number | undefined }> {
  type Loaded =
    { error: string } | { header: { collection: string; dimensions: number }; records: VectorRecord[] };
  const loaded = await mapLimit(rows, 8, async ({ ref, rc }): Promise<Loaded> => {
    hooks.runLoaded?.(ref.runId);
    try {
      // Size-checked before download: a delta larger than any receipt's is refused, never buffered.
      const bytes = await objects
        .getBuffer(bucket, rc.deltaKey, { maxBytes: MAX_DELTA_BYTES })
        .catch((err: unknown) => {
          if (err instanceof ObjectTooLargeError)
            throw new PipelineError('DeltaCorrupt', err.message, err.context);
          throw err;
        });
      const { header, records } = decodeDelta(bytes, rc.sha256);
      if (records.length !== rc.vectors)
        throw new PipelineError(
          'DeltaCorrupt',
          `delta holds ${records.length} vectors, run says ${rc.vectors}`,
        );
      return { header, records };
    } catch (err) {
      if (err instanceof PipelineError && (err.reason === 'DeltaCorrupt' || err.reason === 'SourceMissing'))
        return { error: `${err.reason}: ${err.message}` };
      throw err;
    }
  });
  const good: GoodRun[] = [];
  const bad: BadRun[] = [];
  let dim = dimensions;
  rows.forEach(({ ref, item }, i) => {
    const l = loaded[i]!;
    if ('error' in l) return void bad.push({ ref, error: l.error });
    const { header, records } = l;
    const why = ((): string | undefined => {
      if (header.collection !== c) return `delta is for ${header.collection}, not ${c}`;
      if (records.length === 0) return 'delta is empty';
      const d = dim ?? header.dimensions;
      if (header.dimensions !== d || records.some((r) => r.embedding.length !== d))
        return `wrong dimension ${header.dimensions}, collection has ${d}`;
      const prefix = `${receiptPrefix(ref.imageId, ref.receiptId)}#`;
      const foreign = records.find((r) => !r.id.startsWith(prefix));
      if (foreign) return `id ${foreign.id} does not belong to receipt ${prefix}`;
      return undefined;
    })();
    if (why) return void bad.push({ ref, error: `DeltaCorrupt: ${why}` });
    dim ??= header.dimensions;
    good.push({ ref, item, records });
  });
  return { good, bad, dimensions: dim };
}

import {
  runCollection,
  type CompactionRunItem,
  type RunCollection,
} from '../core/contracts/compaction-run.js';
import { receiptPrefix, type Collection } from '../core/contracts/ids.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ChromaDirError, openChromaDir, type ChromaDirCollection } from '../core/chroma/dir-reader.js';
import { decodeDelta, MAX_DELTA_BYTES } from '../core/delta/arrow-delta.js';
import { fetchChromaDelta, type ChromaDeltaLimits } from '../core/delta/chroma-delta.js';
import type { Logger } from '../core/log.js';
import { migrateMetadata } from '../core/migrate/metadata.js';
import { errorMessage, ObjectTooLargeError, PipelineError } from '../core/errors.js';
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

/**
 * Bytes a run's delta holds in memory once decoded: its vectors (float32) plus a document and metadata each. A delta
 * of the original system declares no count: it is a group of its own (bounded by the Chroma-delta limits instead).
 */
export function deltaBytes(row: RunRow, dimensions: number): number {
  if (row.rc.format === 'chroma') return Infinity;
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

/** What reading a delta of the original system (a Chroma directory) takes; see readChromaRun. */
export interface ChromaDeltaReader {
  /** Local scratch (never the shared volume): one directory per delta while it is read. */
  scratch: string;
  limits: ChromaDeltaLimits;
  /**
   * Every record of collection `c` in the extracted directory, or undefined when it has no such collection. Throws
   * DeltaCorrupt when the directory cannot be read; any other error is transient.
   */
  read(dir: string, c: Collection): Promise<VectorRecord[] | undefined>;
  log?: Logger;
}

/**
 * Reads a delta directory from its files (core/chroma/dir-reader.ts, the reader of `embedctl migrate`): no server,
 * and it reads what Python chromadb 1.5.x wrote, which this project's Chroma server refuses to open (docs/adr/0014).
 * Array metadata becomes this project's shape as in a migration (core/migrate/metadata.ts). Every failure to read
 * the local copy is the delta's fault: DeltaCorrupt.
 */
export const fileDeltaReader: ChromaDeltaReader['read'] = async (dir, c) => {
  let col: ChromaDirCollection;
  try {
    col = openChromaDir(dir, c);
  } catch (err) {
    // The reader's wording for a directory without this collection (any other count is damage).
    if (err instanceof ChromaDirError && err.message.includes('holds 0 collections named')) return undefined;
    throw unreadable(err);
  }
  try {
    const out: VectorRecord[] = [];
    for (const page of col.pages())
      for (const r of page)
        out.push({
          id: r.id,
          document: r.document ?? '',
          metadata: migrateMetadata(r.metadata),
          embedding: r.embedding,
        });
    return out;
  } catch (err) {
    throw unreadable(err);
  } finally {
    col.close();
  }
};

const unreadable = (err: unknown) =>
  new PipelineError(
    'DeltaCorrupt',
    `the Chroma directory cannot be read: ${errorMessage(err).slice(0, 400)}`,
  );

type Loaded =
  { error: string } | { header: { collection: string; dimensions: number }; records: VectorRecord[] };

/**
 * Downloads, verifies and decodes one group's deltas (concurrently), then checks them in order. A bad delta
 * (checksum, truncation, size, missing object, unsafe or unreadable archive, wrong collection or dimension, foreign
 * ids, empty) FAILs only its run; any other error throws (the batch is retried, and bisected to find the culprit).
 */
export async function loadDeltas(
  objects: ObjectStore,
  bucket: string,
  rows: RunRow[],
  c: Collection,
  dimensions: number | undefined,
  hooks: CrashHooks = {},
  chroma?: ChromaDeltaReader,
): Promise<{ good: GoodRun[]; bad: BadRun[]; dimensions: number | undefined }> {
  const loaded = await mapLimit(rows, 8, async ({ ref, rc }): Promise<Loaded> => {
    hooks.runLoaded?.(ref.runId);
    try {
      if (rc.format === 'chroma') {
        if (!chroma) throw new Error('a Chroma-directory delta needs a ChromaDeltaReader');
        return await readChromaRun(objects, bucket, ref, rc.deltaPrefix, c, chroma);
      }
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

/**
 * A delta of the original system: fetched into its own scratch directory (core/delta/chroma-delta.ts: either layout,
 * safe extraction, limits), read whole by the reader, then removed. The directory has no
 * recorded digest or count; what it holds is checked like an Arrow delta's (collection present, not empty, one
 * dimension, ids of this receipt).
 */
export async function readChromaRun(
  objects: ObjectStore,
  bucket: string,
  ref: RunRef,
  prefix: string,
  c: Collection,
  r: ChromaDeltaReader,
): Promise<Loaded> {
  const dir = join(r.scratch, `${ref.runId.replace(/[^A-Za-z0-9_-]/g, '_')}-${c}`);
  const t0 = performance.now();
  try {
    const { layout, bytes } = await fetchChromaDelta(objects, bucket, prefix, dir, r.limits);
    const t1 = performance.now();
    const records = await r.read(dir, c).catch((err: unknown) => {
      if (err instanceof PipelineError && err.reason === 'DeltaCorrupt')
        throw new PipelineError('DeltaCorrupt', `delta ${prefix}: ${err.message}`);
      throw err;
    });
    const ms = { fetch: Math.round(t1 - t0), read: Math.round(performance.now() - t1) };
    r.log?.info(
      { runId: ref.runId, prefix, layout, bytes, vectors: records?.length, ms },
      'read a Chroma delta',
    );
    if (!records)
      throw new PipelineError(
        'DeltaCorrupt',
        `Chroma delta ${prefix} has no collection ${JSON.stringify(c)}`,
      );
    return { header: { collection: c, dimensions: records[0]?.embedding.length ?? 0 }, records };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

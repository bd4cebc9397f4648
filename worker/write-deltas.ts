import type { RunDelta } from '../core/contracts/compaction-run.js';
import { COLLECTIONS, deltaKey, type Collection } from '../core/contracts/ids.js';
import { encodeDelta } from '../core/delta/arrow-delta.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import type { EmbeddingItem } from '../core/receipt/embedding-inputs.js';
import type { ItemContext } from './context.js';
import type { EmbeddedReceipt } from './embed-item.js';

/**
 * Uploads one Arrow delta per collection the job asked for. A collection left out of `spec.collections` gets no
 * delta and no fields in the CompactionRun, so nothing is queued or compacted for it (an empty delta would FAIL the
 * run).
 */
export async function writeDeltas(
  deps: { store: ObjectStore; vectorsBucket: string },
  ctx: ItemContext,
  receipt: EmbeddedReceipt,
): Promise<Partial<Record<Collection, RunDelta>>> {
  const { item, runId, embedder } = ctx;
  const { items } = receipt;
  const records: Record<Collection, () => VectorRecord[]> = {
    lines: () => toRecords(items.lines, receipt.rowVectors),
    words: () => toRecords(items.words, receipt.wordVectors),
  };
  const deltas: Partial<Record<Collection, RunDelta>> = {};
  await Promise.all(
    COLLECTIONS.filter((c) => ctx.collections.has(c)).map(async (c) => {
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
          image_id: item.spec.imageId,
          receipt_id: String(item.spec.receiptId),
          job: item.name,
        },
      });
      deltas[c] = { key, sha256, vectors: recs.length };
    }),
  );
  return deltas;
}

function toRecords(items: EmbeddingItem[], vectors: Float32Array[]): VectorRecord[] {
  return items.map((it, i) => ({
    id: it.id,
    document: it.document,
    metadata: it.metadata,
    embedding: vectors[i]!,
  }));
}

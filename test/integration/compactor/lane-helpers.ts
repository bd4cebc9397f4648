// Helpers for the compactor tests that drive one lane directly or need exact control of stream order.
import { randomUUID } from 'node:crypto';
import { compactionAttributes } from '../../../core/contracts/compaction-message.js';
import { newCompactionRun, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { deltaKey, lineVectorId, type Collection } from '../../../core/contracts/ids.js';
import { encodeDelta } from '../../../core/delta/arrow-delta.js';
import type { ChangeRecord, Item } from '../../../core/ports/ledger.js';
import type { OutgoingMessage } from '../../../core/ports/queue.js';
import type { VectorRecord } from '../../../core/ports/vector-store.js';
import type { Compactor, CompactorConfig } from '../../../compactor/compactor.js';
import { detect } from '../../../stream/change-detection.js';
import { compactorFor, DIM, vec, type World } from './fixtures.js';

/**
 * The messages the stream processor would send to `c`'s queue for one ledger change, with a timestamp of the test's
 * choosing: the real change detection (`detect`) and the real attributes, so a test controls stream order exactly.
 */
export function streamMessages(
  change: Omit<ChangeRecord, 'id'> & { id?: string },
  timestamp: string,
  c: Collection,
): OutgoingMessage[] {
  const record: ChangeRecord = { ...change, id: change.id ?? randomUUID() };
  return detect(record, timestamp)
    .messages.filter((m) => m.collection === c)
    .map((m) => ({ body: JSON.stringify(m.message), attributes: compactionAttributes(m.message, c) }));
}

/** The INSERT of a CompactionRun row as the stream announces it to `c`'s queue. */
export function runInsertMessages(
  run: CompactionRunItem,
  timestamp: string,
  c: Collection,
): OutgoingMessage[] {
  return streamMessages(
    { eventName: 'INSERT', keys: { PK: run.PK, SK: run.SK }, newImage: run as unknown as Item },
    timestamp,
    c,
  );
}

/**
 * A cheap lines run: one receipt, one line vector, one small delta object and the CompactionRun row. Its words
 * fields name the same delta; no words message is ever sent for it, so the words lane never reads them.
 */
export async function writeOneLineRun(
  w: World,
  imageId: string,
  receiptId: number,
  seed: number,
): Promise<CompactionRunItem> {
  const runId = randomUUID();
  const record: VectorRecord = {
    id: lineVectorId(imageId, receiptId, 0),
    document: `flood ${seed}`,
    metadata: { image_id: imageId, receipt_id: receiptId, line_id: 0, text: `flood ${seed}` },
    embedding: vec(seed),
  };
  const enc = encodeDelta({ collection: 'lines', runId, dimensions: DIM, model: 'test' }, [record]);
  const key = deltaKey('lines', runId);
  await w.objects.put(w.bucket, key, enc.bytes);
  const delta = { key, sha256: enc.sha256, vectors: 1 };
  const run = newCompactionRun({ runId, imageId, receiptId, deltas: { lines: delta, words: delta } });
  await w.ledger.putRunIfAbsent(run);
  return run;
}

/**
 * One lane of a compactor that holds the lease, initialised on `w` (working copy open on CURRENT); `close` stops
 * the lane and gives the lease back.
 */
export async function openLane<C extends Collection>(
  w: World,
  identity: string,
  c: C,
  config: Partial<CompactorConfig> = {},
): Promise<{ compactor: Compactor; lane: Compactor['lanes'][C]; close: () => Promise<void> }> {
  const compactor = compactorFor(w, identity, config);
  await compactor.deps.lease.acquire();
  await compactor.fence(undefined);
  const lane = compactor.lanes[c];
  await lane.init();
  return {
    compactor,
    lane,
    close: async () => {
      await lane.close();
      await compactor.deps.lease.release();
    },
  };
}

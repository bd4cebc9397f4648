// A receipt deleted before its run merges stays deleted (issue 17 item 1: receipt tombstones), and deletes and
// metadata recomputes select a receipt's vectors by id prefix, so vectors whose metadata holds `receipt_id` as a
// string (the original's first era) are deleted and re-enriched too (item 3). Real moto, real Chroma, real stream.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import type { QueueMessage } from '../../../core/ports/queue.js';
import { tombstoneKey } from '../../../compactor/tombstones.js';
import {
  dumpLive,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  withLane,
  writeRun,
  type World,
} from './fixtures.js';

const env = inject('testEnv');
const pad = (n: number) => String(n).padStart(5, '0');
const receiptRow = (imageId: string, receiptId: number) => ({
  PK: `IMAGE#${imageId}`,
  SK: `RECEIPT#${pad(receiptId)}`,
});

/** Every message now on the lines queue, split into the run INSERTs and the rest. */
async function take(lane: Parameters<Parameters<typeof withLane>[3]>[0], signal: AbortSignal) {
  const all: QueueMessage[] = [];
  for (let i = 0; i < 5; i++) {
    const got = await lane.receive(signal, { waitSeconds: 0, windowMs: 200 });
    if (!got.length) break;
    all.push(...got);
  }
  const isRun = (m: QueueMessage) =>
    (JSON.parse(m.body) as { entity_type: string }).entity_type === 'COMPACTION_RUN';
  return { runs: all.filter(isRun), others: all.filter((m) => !isRun(m)) };
}

async function liveIds(w: World): Promise<string[]> {
  return [...(await dumpLive(w.root, 'lines', w.dir)).records.keys()].sort();
}

describe.concurrent('a receipt deleted before its run merges', () => {
  it('REMOVE processed before the INSERT: the late run FAILs ReceiptDeleted and adds nothing; other receipts merge', async () => {
    const w = await makeWorld(env, 'del-late');
    const doomed = makeReceipt(70);
    const kept = makeReceipt(71);
    await w.ledger.putItem(receiptRow(doomed.imageId, doomed.receiptId));
    const doomedRun = await writeRun(w, doomed);
    const keptRun = await writeRun(w, kept);
    await pumpStream(w);
    await withLane(w, 'lines', { visibilitySeconds: 30 }, async (lane, signal) => {
      const { runs } = await take(lane, signal); // the INSERTs' messages are held back (a slow stream, a retry)
      expect(runs).toHaveLength(2);
      await w.ledger.deleteItem(receiptRow(doomed.imageId, doomed.receiptId));
      await pumpStream(w);
      const { others: removes } = await take(lane, signal);
      expect(removes).toHaveLength(1);
      expect(await lane.processHeld(removes, signal)).toMatchObject({ deleted: 0 }); // nothing merged yet
      expect(await w.ledger.getItem(tombstoneKey(doomed.imageId, doomed.receiptId))).toMatchObject({
        TYPE: 'RECEIPT_TOMBSTONE',
      });

      expect(await lane.processHeld(runs, signal)).toMatchObject({ completed: 1, failed: 1 });
    });
    expect(await liveIds(w)).toEqual(kept.lines.map((l) => l.id).sort());
    const item = (await w.ledger.getRun(doomed.imageId, doomed.receiptId, doomedRun.run_id))!;
    expect(runCollection(item, 'lines')).toMatchObject({ state: 'FAILED' });
    expect(runCollection(item, 'lines')!.error).toMatch(/^ReceiptDeleted: /);
    const ok = (await w.ledger.getRun(kept.imageId, kept.receiptId, keptRun.run_id))!;
    expect(runCollection(ok, 'lines')).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
  });

  it('REMOVE and the INSERT in one batch: the REMOVE goes first and the run adds nothing', async () => {
    const w = await makeWorld(env, 'del-same');
    const doomed = makeReceipt(72);
    await w.ledger.putItem(receiptRow(doomed.imageId, doomed.receiptId));
    await writeRun(w, doomed);
    await pumpStream(w);
    await w.ledger.deleteItem(receiptRow(doomed.imageId, doomed.receiptId));
    await pumpStream(w);
    await withLane(w, 'lines', {}, async (lane, signal) => {
      const { runs, others } = await take(lane, signal);
      // Stream order puts the INSERT first; REMOVE-first ordering is what keeps the receipt deleted.
      expect(await lane.processHeld([...runs, ...others], signal)).toMatchObject({ completed: 0, failed: 1 });
    });
    expect(await liveIds(w)).toEqual([]);
  });

  it('a receipt deleted after its run merged loses its vectors; a run created after the delete merges again', async () => {
    const w = await makeWorld(env, 'del-recreate');
    const r = makeReceipt(73);
    await w.ledger.putItem(receiptRow(r.imageId, r.receiptId));
    await writeRun(w, r);
    await pumpStream(w);
    await withLane(w, 'lines', {}, async (lane, signal) => {
      await lane.processHeld((await take(lane, signal)).runs, signal);
      expect(await liveIds(w)).toEqual(r.lines.map((l) => l.id).sort());
      await w.ledger.deleteItem(receiptRow(r.imageId, r.receiptId));
      await pumpStream(w);
      expect(await lane.processHeld((await take(lane, signal)).others, signal)).toMatchObject({ deleted: 3 });
      expect(await liveIds(w)).toEqual([]);
      // Re-created (same ids): its new run was created after the tombstone, so it merges.
      await new Promise((res) => setTimeout(res, 20));
      await w.ledger.putItem(receiptRow(r.imageId, r.receiptId));
      await writeRun(w, r);
      await pumpStream(w);
      expect(await lane.processHeld((await take(lane, signal)).runs, signal)).toMatchObject({ completed: 1 });
    });
    expect(await liveIds(w)).toEqual(r.lines.map((l) => l.id).sort());
  });
});

describe("a receipt's vectors are selected by id prefix, not by metadata", () => {
  it('vectors whose metadata holds receipt_id as a string (first era) are re-enriched and deleted', async () => {
    const w = await makeWorld(env, 'era-a');
    const r = makeReceipt(74, { lines: 4 });
    // The original's first era stored receipt_id as a string and no image_id at all on some rows.
    const eraA = r.lines.map((l, i) => ({
      ...l,
      metadata: { ...l.metadata, receipt_id: String(r.receiptId), ...(i % 2 ? { image_id: null } : {}) },
    }));
    const pk = `IMAGE#${r.imageId}`;
    await w.ledger.putItem(receiptRow(r.imageId, r.receiptId));
    await withLane(w, 'lines', {}, async (lane, signal) => {
      await lane.wc.add(eraA);
      await lane.publish(eraA.map((l) => l.id)); // an imported snapshot of the original's

      await w.ledger.putItem({
        PK: pk,
        SK: `RECEIPT#${pad(r.receiptId)}#PLACE`,
        merchant_name: 'Corner Deli',
        place_id: 'p-1',
      });
      await pumpStream(w);
      expect(await lane.processHeld((await take(lane, signal)).others, signal)).toMatchObject({
        updated: 4,
      });
      const live = await dumpLive(w.root, 'lines', w.dir);
      for (const l of eraA)
        expect(live.records.get(l.id)!.metadata).toMatchObject({ merchant_name: 'Corner Deli' });

      await w.ledger.deleteItem(receiptRow(r.imageId, r.receiptId));
      await pumpStream(w);
      expect(await lane.processHeld((await take(lane, signal)).others, signal)).toMatchObject({ deleted: 4 });
    });
    expect(await liveIds(w)).toEqual([]);
  });
});

// REMOVE-first within a batch (README "Compactor", step 3 and 6): the deletes a batch asks for are applied before
// any of its runs is merged, whatever the timestamps, and only for entities the ledger no longer has.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { lineVectorId } from '../../../core/contracts/ids.js';
import { dumpLive, makeReceipt, makeWorld, writeRun, type Receipt } from './fixtures.js';
import { openLane, runInsertMessages, streamMessages } from './lane-helpers.js';

const env = inject('testEnv');
const pad = (n: number) => String(n).padStart(5, '0');

describe('REMOVE-before-INSERT ordering', () => {
  it('line REMOVEs in a batch apply before its runs: a run re-adds a removed id even when the REMOVE is newer; the ledger still decides which deletes apply', async () => {
    const w = await makeWorld(env, 'rm-order');
    const a = makeReceipt(50, { lines: 4, words: 0 });
    const { imageId, receiptId } = a;
    const pk = `IMAGE#${imageId}`;
    const lineSk = (l: number) => `RECEIPT#${pad(receiptId)}#LINE#${pad(l)}`;
    const lid = (l: number) => lineVectorId(imageId, receiptId, l);
    const { lane, close } = await openLane(w, 'rm-order', 'lines', { batchWindowMs: 500 });
    const signal = new AbortController().signal;
    try {
      // Batch 1: run A stores lines 0–3 ("line 50-0" … "line 50-3").
      const runA = await writeRun(w, a);
      await w.queues.lines.send(runInsertMessages(runA, '2026-01-01T00:00:00.000Z', 'lines'));
      const first = await lane.receive(signal);
      expect(first).toHaveLength(1);
      expect(await lane.processBatch(first)).toMatchObject({ completed: 1, added: 4 });

      // Batch 2, all in one receive. Run B (same receipt, stream time T) carries lines 1, 2 and 4 anew.
      const full = makeReceipt(51, { lines: 5, words: 0, imageId, receiptId });
      const b: Receipt = { ...full, lines: full.lines.filter((_, l) => [1, 2, 4].includes(l)) };
      const runB = await writeRun(w, b);
      // The ledger: line 0 was removed and re-created (it is there again); lines 1, 2, 3 are gone.
      await w.ledger.putItem({ PK: pk, SK: lineSk(0), text: 'back' });
      const T = Date.parse('2026-01-01T00:10:00.000Z');
      const at = (s: number) => new Date(T + s * 1000).toISOString();
      const remove = (l: number, t: string) =>
        streamMessages(
          { eventName: 'REMOVE', keys: { PK: pk, SK: lineSk(l) }, oldImage: { PK: pk, SK: lineSk(l) } },
          t,
          'lines',
        );
      // Sent in neither stream order nor REMOVE-first order: the compactor orders them itself.
      await w.queues.lines.send([
        ...remove(1, at(+2)), // newer than run B
        ...runInsertMessages(runB, at(0), 'lines'),
        ...remove(0, at(+1)), // the ledger has line 0 again: not deleted
        ...remove(2, at(-2)), // older than run B
        ...remove(3, at(-1)), // not in run B: simply deleted
      ]);
      const second = await lane.receive(signal);
      expect(second).toHaveLength(5);
      const result = await lane.processBatch(second);

      // REMOVE-first: the deletes of lines 1, 2, 3 (present, absent from the ledger) run before run B is merged, so B
      // then *adds* lines 1, 2 and 4 (nothing left to replace).
      expect(result).toMatchObject({ completed: 1, failed: 0, deleted: 3, added: 3, replaced: 0 });
      const live = await dumpLive(w.root, 'lines', w.dir);
      const docs = Object.fromEntries([...live.records].map(([id, r]) => [id, r.document]));
      // Why the order matters: in plain stream (timestamp) order, line 1's REMOVE (T+2 s) comes *after* run B (T),
      // so B's line 1 would be written and then deleted — line 1 absent. REMOVE-first applies every delete of the
      // batch before any run, so B's line 1 is written last and stays. (Line 2's REMOVE at T−2 s precedes B in
      // either order, so it stays either way — unless deletes were applied after the runs, which would drop both
      // 1 and 2.) Line 0 stays with A's vector because the ledger has it again; line 3 is gone.
      expect(docs).toEqual({
        [lid(0)]: 'line 50-0',
        [lid(1)]: 'line 51-1',
        [lid(2)]: 'line 51-2',
        [lid(4)]: 'line 51-4',
      });
      const bLine1 = b.lines.find((r) => r.id === lid(1))!;
      expect(live.records.get(lid(1))!.embedding).toEqual(Array.from(bLine1.embedding));
      const item = (await w.ledger.getRun(imageId, receiptId, runB.run_id))!;
      expect(runCollection(item, 'lines')).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
    } finally {
      await close();
    }
  });
});

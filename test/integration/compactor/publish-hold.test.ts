// publishHoldMs: batches that are already queued when a batch has been merged are merged too, and one publish covers
// them all; every run is COMPLETED and every message deleted only after that publish.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import type { Compactor, CompactorConfig } from '../../../compactor/compactor.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { listVersions } from '../../../core/snapshot/volume.js';
import {
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  withLane,
  writeRun,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

/** The lines lane of a compactor that holds the lease, on a fresh world. */
async function withLinesLane(
  tag: string,
  publishHoldMs: CompactorConfig['publishHoldMs'],
  use: (w: World, lane: Compactor['lanes']['lines'], signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const w = await makeWorld(env, tag);
  await withLane(w, 'lines', { publishHoldMs }, (lane, signal) => use(w, lane, signal));
}

describe('compactor publish hold', () => {
  it('merges the batches queued meanwhile and publishes them once', () =>
    withLinesLane('hold', 30_000, async (w, lane, signal) => {
      const receipts = [makeReceipt(1), makeReceipt(2, { lines: 4 }), makeReceipt(3, { lines: 2 })];
      const runs = [await writeRun(w, receipts[0]!)];
      await pumpStream(w);
      const first = await lane.receive(signal);
      expect(first).toHaveLength(1);
      // Two more runs arrive while the first batch is held.
      for (const r of receipts.slice(1)) runs.push(await writeRun(w, r));
      await pumpStream(w);

      const result = await lane.processHeld(first, signal);
      expect(result).toMatchObject({ messages: 3, completed: 3, failed: 0 });
      expect(await listVersions(w.root, 'lines')).toHaveLength(1); // one publish for the three batches
      const live = await dumpLive(w.root, 'lines', w.dir);
      expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, 'lines').keys()].sort());
      for (const run of runs) {
        const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
        expect(runCollection(item, 'lines')).toMatchObject({ state: 'COMPLETED' });
      }
      expect(await queueDepth(w, w.urls.lines)).toBe(0);
    }));

  it('holds per collection: a lane without a hold of its own publishes after every batch', () =>
    withLinesLane('hold-per', { words: 30_000 }, async (w, lane, signal) => {
      await writeRun(w, makeReceipt(1));
      await pumpStream(w);
      const first = await lane.receive(signal);
      for (const r of [makeReceipt(2), makeReceipt(3)]) await writeRun(w, r);
      await pumpStream(w);

      expect(await lane.processHeld(first, signal)).toMatchObject({ messages: 1, completed: 1 });
      expect(await listVersions(w.root, 'lines')).toHaveLength(1);
      expect(await queueDepth(w, w.urls.lines)).toBe(2); // not merged into the first publish
    }));
});

// Restore racing a publish (issue 17 item 2): CURRENT moves under a compactor between its merge and its switch. The
// switch is a compare-and-swap on the version the working copy came from, so the publish is refused, the lane
// reloads the new CURRENT and merges the batch again on top of it: the restore is never silently undone.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { listVersions, readCurrent, switchCurrent } from '../../../core/snapshot/volume.js';
import {
  compactorFor,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  writeRun,
} from './fixtures.js';

const env = inject('testEnv');

describe('CURRENT is switched by compare-and-swap', () => {
  it('a restore between merge and switch: the publish is refused and the batch merges on top of the restored version', async () => {
    const w = await makeWorld(env, 'cas');
    const [a, b, c] = [makeReceipt(90), makeReceipt(91), makeReceipt(92)];
    for (const r of [a, b]) {
      await writeRun(w, r);
      await pumpStream(w);
      await compactorFor(w, 'c1').run(new AbortController().signal);
    }
    const [v1, v2] = await listVersions(w.root, 'lines');
    expect(await readCurrent(w.root, 'lines')).toBe(v2);

    const run = await writeRun(w, c);
    await pumpStream(w);
    const compactor = compactorFor(w, 'c2', { exitWhenIdleMs: 4000 });
    const fence = compactor.fence.bind(compactor);
    let restored = false;
    // Right before the lines lane's switch (its fence), an operator restores v1.
    compactor.fence = async (collection) => {
      if (collection === 'lines' && !restored) {
        restored = true;
        await switchCurrent(w.root, 'lines', v1!, { expected: v2 });
      }
      return fence(collection);
    };
    await compactor.run(new AbortController().signal);
    expect(restored).toBe(true);

    const lines = await dumpLive(w.root, 'lines', w.dir);
    // v1 (a) + the batch (c): b's vectors were rolled back by the restore and stay rolled back.
    expect([...lines.records.keys()].sort()).toEqual([...expectedUnion([a, c], 'lines').keys()].sort());
    const words = await dumpLive(w.root, 'words', w.dir);
    expect([...words.records.keys()].sort()).toEqual([...expectedUnion([a, b, c], 'words').keys()].sort());
    const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
    expect(runCollection(item, 'lines')).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
  });
});

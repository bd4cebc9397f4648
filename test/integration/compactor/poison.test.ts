// Poison messages (issue 17 item 5): a message whose processing fails is found by bisecting its batch, so the innocent
// ones commit and only it is retried or dead-lettered; a message that kills the process is counted durably and
// dead-lettered as CrashLoop; runs are loaded in byte-bounded groups; an id missing after the upsert fails the batch.
// Real moto, real Chroma, and real `embedctl compactor` processes for the crash loop.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { listVersions, readCurrent } from '../../../core/snapshot/volume.js';
import {
  childEnv,
  dlqMessages,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  spawnTsx,
  withLane,
  writeRun,
  type Receipt,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

async function runsOf(w: World, n: number, seed: number) {
  const receipts: Receipt[] = [];
  const runs: CompactionRunItem[] = [];
  for (let i = 0; i < n; i++) {
    const r = makeReceipt(seed + i);
    receipts.push(r);
    runs.push(await writeRun(w, r));
  }
  await pumpStream(w);
  return { receipts, runs };
}

async function state(w: World, run: CompactionRunItem, c: 'lines' | 'words' = 'lines') {
  return runCollection((await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!, c);
}

describe.concurrent('poison messages', () => {
  it('one message failing outside its delta: bisection commits the other five, only it is dead-lettered', async () => {
    const w = await makeWorld(env, 'bisect');
    const { receipts, runs } = await runsOf(w, 6, 300);
    // The culprit's row no longer parses (dimensions < 1): loading it throws, which is not a delta fault.
    await w.ledger.putItem({ ...runs[3]!, dimensions: -5 } as never);
    await withLane(w, 'lines', { maxReceives: 1 }, async (lane, signal) => {
      const msgs = await lane.receive(signal, { waitSeconds: 1, windowMs: 500 });
      expect(msgs).toHaveLength(6);
      expect(await lane.processHeld(msgs, signal)).toMatchObject({ completed: 5, failed: 0 });
    });
    const live = await dumpLive(w.root, 'lines', w.dir);
    const innocent = receipts.filter((_, i) => i !== 3);
    expect([...live.records.keys()].sort()).toEqual([...expectedUnion(innocent, 'lines').keys()].sort());
    for (const [i, run] of runs.entries())
      if (i !== 3) expect(await state(w, run)).toMatchObject({ state: 'COMPLETED' });
    const dead = await dlqMessages(w);
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0]!.body)).toMatchObject({ entity_data: { run_id: runs[3]!.run_id } });
    expect(dead[0]!.reason).toMatch(/^RepeatedFailure: failed 1 times; last: /);
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
  });

  it('a message that kills the compactor every time is dead-lettered as CrashLoop; every other run merges exactly', async () => {
    const w = await makeWorld(env, 'crashloop');
    const { receipts, runs } = await runsOf(w, 8, 400);
    const culprit = runs[5]!;
    const deaths: number[] = [];
    for (let i = 0; i < 14; i++) {
      const res = await spawnTsx(
        'cli/main.ts',
        ['compactor'],
        childEnv(w, env, {
          EMBEDCTL_CRASH_ON_RUN: culprit.run_id,
          COMPACTOR_VISIBILITY_SECONDS: '2',
          LEASE_DURATION_MS: '2000',
          COMPACTOR_EXIT_WHEN_IDLE_MS: '4000',
        }),
      ).done;
      if (res.signal === 'SIGKILL') {
        expect(res.stderr).toContain(`EMBEDCTL_CRASH_ON_RUN=${culprit.run_id}`);
        deaths.push(i);
        continue;
      }
      expect(res.code, res.stderr).toBe(0);
      if ((await queueDepth(w, w.urls.lines)) + (await queueDepth(w, w.urls.words)) === 0) break;
    }
    // Each lane: the full batch, its group, then twice alone (crashLimit 2); the lanes' first deaths may coincide.
    expect(deaths.length).toBeGreaterThanOrEqual(4);
    expect(deaths.length).toBeLessThanOrEqual(8);
    const dead = await dlqMessages(w);
    expect(
      dead.map((d) => (JSON.parse(d.body) as { entity_data: { run_id: string } }).entity_data.run_id),
    ).toEqual([culprit.run_id, culprit.run_id]);
    for (const d of dead)
      expect(d.reason).toMatch(
        /^CrashLoop: the compactor died \d+ times with this message in its batch, 2 times with it alone$/,
      );
    const innocent = receipts.filter((_, i) => i !== 5);
    for (const c of COLLECTIONS) {
      const live = await dumpLive(w.root, c, w.dir);
      expect([...live.records.keys()].sort()).toEqual([...expectedUnion(innocent, c).keys()].sort());
      expect(await state(w, culprit, c)).toMatchObject({ state: 'FAILED' });
      for (const [i, run] of runs.entries())
        if (i !== 5)
          expect(await state(w, run, c)).toMatchObject({
            state: 'COMPLETED',
            mergedVectors: run[`${c}_vectors`],
          });
    }
    console.log(
      `crash loop: ${deaths.length} deaths before both of the culprit's messages were dead-lettered`,
    );
  }, 240_000);

  it('runs are loaded and applied in groups below maxGroupBytes; the result is exact', async () => {
    const w = await makeWorld(env, 'groups');
    const { receipts, runs } = await runsOf(w, 6, 500);
    // 3 lines × (16 dims × 4 B + 512 B) = 1,728 B per run: two runs never fit under 3,000 B.
    await withLane(w, 'lines', { maxGroupBytes: 3000 }, async (lane, signal) => {
      const msgs = await lane.receive(signal, { waitSeconds: 1, windowMs: 500 });
      expect(await lane.processHeld(msgs, signal)).toMatchObject({ completed: 6, groups: 6, added: 18 });
    });
    const live = await dumpLive(w.root, 'lines', w.dir);
    expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, 'lines').keys()].sort());
    for (const run of runs)
      expect(await state(w, run)).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
  });

  it('an id missing after the upsert fails the batch: nothing published, no run COMPLETED, the messages come back', async () => {
    const w = await makeWorld(env, 'missing-id');
    const { receipts, runs } = await runsOf(w, 3, 600);
    await withLane(w, 'lines', {}, async (lane, signal) => {
      const add = lane.wc.add.bind(lane.wc);
      // Chroma acknowledging an add it did not keep: the last record of every add is dropped.
      lane.wc.add = (records) => add(records.slice(0, -1));
      const msgs = await lane.receive(signal, { waitSeconds: 1, windowMs: 500 });
      expect(await lane.processHeld(msgs, signal)).toBeUndefined();
      expect(await readCurrent(w.root, 'lines')).toBeUndefined();
      expect(await listVersions(w.root, 'lines')).toEqual([]);
      for (const run of runs) expect(await state(w, run)).toMatchObject({ state: 'PENDING' });
      expect(await dlqMessages(w)).toEqual([]);

      lane.wc.add = add;
      await new Promise((r) => setTimeout(r, 2500)); // backoff of a first failure: 2 s
      const again = await lane.receive(signal, { waitSeconds: 2, windowMs: 500 });
      expect(again).toHaveLength(3);
      expect(await lane.processHeld(again, signal)).toMatchObject({ completed: 3 });
    });
    const live = await dumpLive(w.root, 'lines', w.dir);
    expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, 'lines').keys()].sort());
  });
});

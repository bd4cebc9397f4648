// Crash matrix: real child processes (`embedctl compactor`, the standalone stream processor) SIGKILL themselves at
// each step via EMBEDCTL_CRASH_AT; after a restart the live version holds exactly the union of the deltas, every run
// is COMPLETED with its count, no message is left, nothing lost or doubled. Every case has a world of its own
// (table, bucket, queues, volume, lease file), so the cases run concurrently.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { checkVersion, readCurrent, readManifest, versionDir } from '../../../core/snapshot/volume.js';
import {
  childEnv,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  serversUnder,
  spawnTsx,
  writeRun,
  type Receipt,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

async function compactorProcess(w: World, extra: Record<string, string> = {}) {
  return spawnTsx('cli/main.ts', ['compactor'], childEnv(w, env, extra)).done;
}

async function expectExact(w: World, receipts: Receipt[], runs: CompactionRunItem[]): Promise<void> {
  for (const c of COLLECTIONS) {
    const live = await dumpLive(w.root, c, w.dir);
    const want = expectedUnion(receipts, c);
    expect([...live.records.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, rec] of want) {
      expect(live.records.get(id)!.embedding).toEqual(Array.from(rec.embedding));
      expect(live.records.get(id)!.document).toBe(rec.document);
    }
  }
  for (const run of runs) {
    const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
    for (const c of COLLECTIONS) {
      expect(runCollection(item, c)).toMatchObject({
        state: 'COMPLETED',
        mergedVectors: run[`${c}_vectors`],
      });
    }
  }
  expect(await queueDepth(w, w.urls.lines)).toBe(0);
  expect(await queueDepth(w, w.urls.words)).toBe(0);
  // The killed compactor's Chroma servers were reaped by its successor: no second server on any directory.
  expect(await serversUnder(w.dir)).toEqual([]);
}

/** Restarts the compactor until nothing is pending (messages come back after their visibility timeout). */
async function recover(w: World, extra: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const res = await compactorProcess(w, { ...extra, COMPACTOR_EXIT_WHEN_IDLE_MS: '6000' });
    expect(res.code, res.stderr).toBe(0);
    if ((await queueDepth(w, w.urls.lines)) + (await queueDepth(w, w.urls.words)) === 0) return;
  }
}

/**
 * A first receipt goes live, then two more are merged by a compactor that SIGKILLs itself at `step`; restarted, the
 * live versions hold exactly the union. `extra`: environment of every compactor process of the case.
 */
async function crashCase(step: string, name: string, extra: Record<string, string> = {}): Promise<World> {
  const w = await makeWorld(env, name);
  // A first receipt is already live, so crashes hit a collection with a published base version.
  const first = makeReceipt(50);
  const runs = [await writeRun(w, first)];
  await pumpStream(w);
  expect((await compactorProcess(w, extra)).code).toBe(0);
  const base = await readCurrent(w.root, 'lines');
  expect(base).toBeDefined();

  const receipts = [first, makeReceipt(51, { lines: 4, words: 3 }), makeReceipt(52)];
  for (const r of receipts.slice(1)) runs.push(await writeRun(w, r));
  await pumpStream(w);
  const crashed = await compactorProcess(w, { ...extra, EMBEDCTL_CRASH_AT: step });
  expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
  expect(crashed.stderr).toContain(`EMBEDCTL_CRASH_AT=${step}`);
  if (['after-download', 'mid-upsert', 'after-copy', 'before-switch'].includes(step)) {
    // Nothing was switched: readers still see the old version.
    expect(await readCurrent(w.root, 'lines')).toBe(base);
  }
  await recover(w, extra);
  await expectExact(w, receipts, runs);
  return w;
}

describe.concurrent('crash matrix: compactor', () => {
  it.each(['after-download', 'mid-upsert', 'after-copy', 'before-switch', 'after-switch', 'after-mark'])(
    'SIGKILL at %s, restart: exact final state',
    async (step) => {
      await crashCase(step, `crash-${step}`);
    },
  );

  // COMPACTOR_SEAL_VECTORS=5: the base's words (6) are sealed already; the crashing run seals lines (10) or words.
  it.each(['seal-after-copy', 'seal-before-switch', 'seal-after-switch'])(
    'SIGKILL at %s while sealing the hot segment, restart: exact final state, the sealed segments intact',
    async (step) => {
      const w = await crashCase(step, `crash-${step}`, { COMPACTOR_SEAL_VECTORS: '5' });
      for (const c of COLLECTIONS) {
        const dir = versionDir(w.root, c, (await readCurrent(w.root, c))!);
        expect((await readManifest(dir)).segments.length).toBeGreaterThanOrEqual(1);
        expect(await checkVersion(dir)).toBeUndefined();
      }
    },
    300_000, // one more compactor start (the seal cut short is done again on start) and a server per segment
  );

  // COMPACTOR_SEAL_VECTORS=5: the crashing run seals a second segment, which is merged into the first in the
  // background (compactor/merge-policy.ts) and installed before the idle exit: the crash hits the install.
  it.each(['merge-after-copy', 'merge-before-switch', 'merge-after-switch'])(
    'SIGKILL at %s while installing a merged segment, restart: exact final state, one sealed segment left',
    async (step) => {
      const w = await crashCase(step, `crash-${step}`, { COMPACTOR_SEAL_VECTORS: '5' });
      for (const c of COLLECTIONS) {
        const dir = versionDir(w.root, c, (await readCurrent(w.root, c))!);
        const m = await readManifest(dir);
        expect(m.segments.length).toBe(1);
        expect(m.tombstones).toEqual({});
        expect(await checkVersion(dir)).toBeUndefined();
      }
    },
    300_000,
  );

  it('a receipt delete racing its merge, SIGKILL right after the tombstone, restart: the receipt stays deleted', async () => {
    const w = await makeWorld(env, 'crash-tombstone');
    const doomed = makeReceipt(53);
    const receipts = [makeReceipt(54), makeReceipt(55)];
    const row = { PK: `IMAGE#${doomed.imageId}`, SK: 'RECEIPT#00001' };
    await w.ledger.putItem(row);
    const doomedRun = await writeRun(w, doomed);
    const runs = [];
    for (const r of receipts) runs.push(await writeRun(w, r));
    await w.ledger.deleteItem(row); // deleted before anything merged: its INSERT and REMOVE are queued together
    await pumpStream(w);
    const crashed = await compactorProcess(w, { EMBEDCTL_CRASH_AT: 'after-tombstone' });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    await recover(w);
    await expectExact(w, receipts, runs);
    const item = (await w.ledger.getRun(doomed.imageId, doomed.receiptId, doomedRun.run_id))!;
    for (const c of COLLECTIONS) expect(runCollection(item, c)!.error).toMatch(/^ReceiptDeleted: /);
  });
});

describe.concurrent('crash matrix: stream processor', () => {
  it.each(['stream-after-read', 'stream-after-send-lines', 'stream-after-send-words'])(
    'SIGKILL at %s, restart: every run reaches both queues and merges exactly once',
    async (step) => {
      const w = await makeWorld(env, `scrash-${step.slice(7)}`);
      const receipts = [makeReceipt(60), makeReceipt(61)];
      const runs = [];
      for (const r of receipts) runs.push(await writeRun(w, r));
      const streamEnv = childEnv(w, env, {
        STREAM_CHECKPOINT_FILE: join(w.dir, 'stream.json'),
        STREAM_NO_SINK: '1',
      });
      const crashed = await spawnTsx('stream/main.ts', [], { ...streamEnv, EMBEDCTL_CRASH_AT: step }).done;
      expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      const again = spawnTsx('stream/main.ts', [], streamEnv);
      // Wait until the restarted processor committed (the checkpoint exists), then stop it.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !existsSync(join(w.dir, 'stream.json')))
        await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(join(w.dir, 'stream.json'))).toBe(true);
      expect(await queueDepth(w, w.urls.lines)).toBeGreaterThanOrEqual(2);
      expect(await queueDepth(w, w.urls.words)).toBeGreaterThanOrEqual(2);
      again.child.kill('SIGTERM');
      expect((await again.done).code).toBe(0);
      await recover(w);
      await expectExact(w, receipts, runs);
    },
  );
});

// The publish reopens the flushed working copy and validates it with real Chroma calls (count, a nearest-neighbour
// query, every merged id) before CURRENT moves (README "Compactor" step 8; the original's failure 12, "readable ≠
// healthy"). Here the flushed bytes are really damaged: Chroma opens them and counts and finds ids fine, but cannot
// read a vector or answer a query.
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { listVersions, readCurrent } from '../../../core/snapshot/volume.js';
import {
  compactorFor,
  dlqMessages,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  writeRun,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

/**
 * Zeroes the HNSW vector file (`<segment>/data_level0.bin`: every element's links, vector and label) of a stopped
 * Chroma directory, keeping its size. Found by experiment with the Chroma server of the chromadb package: the index
 * still loads (header.bin and index_metadata.pickle are intact), count and get-by-id answer from SQLite, but a get
 * with embeddings fails ("Error getting embedding") and so does a query ("Error finding id").
 */
async function zeroVectors(dir: string): Promise<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const file = join(dir, e.name, 'data_level0.bin');
    const fh = await open(file, 'r+').catch(() => undefined);
    if (!fh) continue;
    try {
      const { size } = await fh.stat();
      await fh.write(Buffer.alloc(size), 0, size, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return file;
  }
  throw new Error(`no HNSW segment with data_level0.bin under ${dir}`);
}

async function linesState(w: World, run: CompactionRunItem) {
  return runCollection((await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!, 'lines')?.state;
}

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('publish validation', () => {
  it('a flushed copy that counts and finds ids but cannot answer a query is refused before CURRENT moves; its runs stay open and the batch comes back', async () => {
    const w = await makeWorld(env, 'bad-hnsw');
    // 40 lines: more than the collection's HNSW sync threshold (32), so Chroma has an index on disk to damage
    // (below it everything is still in Chroma's log and the index is rebuilt from there on open).
    const a = makeReceipt(70, { lines: 40, words: 1 });
    const runA = await writeRun(w, a);
    await pumpStream(w);
    const compactor = compactorFor(w, 'bad-hnsw', { exitWhenIdleMs: undefined, maxReceives: 50 });
    const lane = compactor.lanes.lines;

    // The damage strikes between the publish's stop (Chroma flushed) and its restart on the flushed bytes: after
    // the merge was verified on the running server, before anything is copied or reopened. So the copy is
    // byte-identical to what the restarted server opens (the stage-copy check has nothing to refuse), and only the
    // validation's Chroma calls can tell.
    let damage = false;
    let publishing = false;
    const damaged: string[] = [];
    const failures: string[] = [];
    const stop = lane.wc.stop.bind(lane.wc);
    lane.wc.stop = async () => {
      await stop();
      if (damage && publishing) damaged.push(await zeroVectors(lane.wc.dir));
    };
    const publish = lane.publish.bind(lane);
    lane.publish = async (ids) => {
      publishing = true;
      try {
        return await publish(ids);
      } catch (err) {
        failures.push(String(err));
        throw err;
      } finally {
        publishing = false;
      }
    };

    const ac = new AbortController();
    const running = compactor.run(ac.signal);
    running.catch(() => undefined); // awaited below
    try {
      await until('run A COMPLETED', async () => (await linesState(w, runA)) === 'COMPLETED');
      const v1 = await readCurrent(w.root, 'lines');
      expect(v1).toBeDefined();
      expect(await listVersions(w.root, 'lines')).toEqual([v1]);

      // From now on every publish of the lines lane meets damaged bytes.
      damage = true;
      const b = makeReceipt(71, { lines: 3, words: 1 });
      const runB = await writeRun(w, b);
      await pumpStream(w);
      // Two refused publishes: the first attempt, and the retry after the batch's message came back.
      await until(
        'two refused publishes (or run B COMPLETED)',
        async () => failures.length >= 2 || (await linesState(w, runB)) === 'COMPLETED',
      );
      expect(
        failures.length,
        `publishes: ${failures.length} refused, run B ${await linesState(w, runB)}`,
      ).toBeGreaterThanOrEqual(2);
      expect(damaged.length).toBeGreaterThanOrEqual(2);
      // Refused by the validation's vector reads, after its count matched — not by the stage-copy check.
      for (const f of failures) expect(f).toMatch(/Error (getting embedding|finding id)/);
      expect(await readCurrent(w.root, 'lines')).toBe(v1);
      expect(await listVersions(w.root, 'lines')).toEqual([v1]);
      expect(['PENDING', 'PROCESSING']).toContain(await linesState(w, runB));
      expect(await queueDepth(w, w.urls.lines)).toBe(1); // not deleted: visible again or being retried
      expect(await dlqMessages(w)).toEqual([]);
      const live = await dumpLive(w.root, 'lines', w.dir);
      expect([...live.records.keys()].sort()).toEqual(a.lines.map((r) => r.id).sort());

      // The disk is healthy again: the message that came back is merged and published.
      damage = false;
      await until('run B COMPLETED', async () => (await linesState(w, runB)) === 'COMPLETED');
      const v2 = await readCurrent(w.root, 'lines');
      expect(v2).not.toBe(v1);
      expect(await listVersions(w.root, 'lines')).toEqual([v1, v2]);
      const after = await dumpLive(w.root, 'lines', w.dir);
      expect([...after.records.keys()].sort()).toEqual([...expectedUnion([a, b], 'lines').keys()].sort());
      await until('lines queue empty', async () => (await queueDepth(w, w.urls.lines)) === 0);
    } finally {
      ac.abort();
      await running;
    }
  });
});

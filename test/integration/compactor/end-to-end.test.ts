// End to end over real DynamoDB Streams / SQS / S3 (moto) and real Chroma servers:
// CompactionRun rows → stream processor → LINES/WORDS → compactor → live version == union of the deltas,
// runs COMPLETED with merged counts, the S3 snapshot restores to the same content.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { readPointer, restoreSnapshot } from '../../../core/snapshot/s3-snapshot.js';
import type { CompactionReport } from '../../../stream/change-detection.js';
import {
  compactorFor,
  dumpDir,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  queueDepth,
  pumpStream,
  writeRun,
} from './fixtures.js';

const env = inject('testEnv');

describe('compactor end to end', () => {
  it('merges every delta exactly, marks runs COMPLETED, reports to the job, and mirrors to S3', async () => {
    const w = await makeWorld(env, 'e2e');
    const receipts = [
      makeReceipt(1),
      makeReceipt(2, { lines: 5, words: 3 }),
      makeReceipt(3, { lines: 1, words: 1 }),
    ];
    const runs = [];
    for (const [i, r] of receipts.entries()) runs.push(await writeRun(w, r, { jobName: `ej-${i}` }));

    await pumpStream(w);
    expect(await queueDepth(w, w.urls.lines)).toBe(3);
    expect(await queueDepth(w, w.urls.words)).toBe(3);

    const compactor = compactorFor(w, 'c1');
    await compactor.run(new AbortController().signal);

    for (const c of COLLECTIONS) {
      const live = await dumpLive(w.root, c, w.dir);
      const want = expectedUnion(receipts, c);
      expect([...live.records.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [id, rec] of want) {
        const got = live.records.get(id)!;
        expect(got.document).toBe(rec.document);
        expect(got.metadata).toMatchObject(rec.metadata);
        expect(got.embedding).toEqual(Array.from(rec.embedding));
      }
      // The S3 snapshot (uploaded on shutdown at the latest) restores to exactly the same content.
      expect(await readPointer(w.objects, w.bucket, c)).toBe(live.version);
      const restored = await mkdtemp(join(w.dir, `restore-${c}-`));
      await restoreSnapshot(w.objects, w.bucket, c, restored);
      const fromS3 = await dumpDir(restored, c);
      expect(fromS3).toEqual(live.records);
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

    // The stream sees the COMPLETED MODIFYs: reported to the jobs, and no new compaction messages (failure 16).
    const reports: CompactionReport[] = [];
    await pumpStream(w, reports);
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
    expect(
      reports
        .filter((r) => r.state === 'Completed')
        .map((r) => `${r.jobName}/${r.collection}`)
        .sort(),
    ).toEqual(['ej-0/lines', 'ej-0/words', 'ej-1/lines', 'ej-1/words', 'ej-2/lines', 'ej-2/words']);
  });

  it('a replayed message for a COMPLETED run changes nothing and publishes nothing', async () => {
    const w = await makeWorld(env, 'replay');
    const r = makeReceipt(7);
    await writeRun(w, r);
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    const before = await dumpLive(w.root, 'lines', w.dir);
    // Replay the whole stream from the start (lost checkpoint): same messages again.
    const { rm } = await import('node:fs/promises');
    await rm(join(w.dir, 'stream-checkpoint.json'));
    await pumpStream(w);
    expect(await queueDepth(w, w.urls.lines)).toBeGreaterThan(0);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    const after = await dumpLive(w.root, 'lines', w.dir);
    expect(after.version).toBe(before.version);
    expect(after.records).toEqual(before.records);
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
  });
});

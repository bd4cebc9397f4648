// An empty volume is restored from the S3 pointer (and that version published) before new deltas merge on top;
// with neither volume nor pointer the collection starts empty and only a change publishes it.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { readPointer } from '../../../core/snapshot/s3-snapshot.js';
import { collectionDir, listVersions, readCurrent } from '../../../core/snapshot/volume.js';
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

describe('bootstrap', () => {
  // Issue 17 item 8: a corrupt CURRENT must not crash-loop the compactor; it falls back to the newest valid version.
  it.concurrent.each([
    ['garbage', 'not a version\n\u0000\u0001'],
    ['a path', '../../../words\n'],
    ['a version that does not exist', '20260101T000000000Z-abcdef\n'],
    ['nothing (empty file)', ''],
  ])(
    'a CURRENT naming %s falls back to the newest intact version and merges on top',
    async (_what, content) => {
      const w = await makeWorld(env, 'bad-current');
      const receipts = [makeReceipt(85), makeReceipt(86), makeReceipt(87)];
      // A publish that fails transiently (a copy that saw a file change, compactor/stage-copy.ts) is retried before
      // the compactor exits idle: it waits for the messages it rescheduled (compactor/lane.ts).
      for (const r of receipts.slice(0, 2)) {
        await writeRun(w, r);
        await pumpStream(w);
        await compactorFor(w, 'c1').run(new AbortController().signal);
      }
      const newest = await readCurrent(w.root, 'lines');
      expect(await listVersions(w.root, 'lines')).toHaveLength(2);
      for (const c of COLLECTIONS) await writeFile(join(collectionDir(w.root, c), 'CURRENT'), content);

      await writeRun(w, receipts[2]!);
      await pumpStream(w);
      await compactorFor(w, 'c2').run(new AbortController().signal);
      for (const c of COLLECTIONS) {
        const live = await dumpLive(w.root, c, w.dir);
        expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, c).keys()].sort());
      }
      expect(await readCurrent(w.root, 'lines')).not.toBe(newest);
    },
  );

  it('restores an empty volume from S3, then merges new runs on top of it', async () => {
    const w = await makeWorld(env, 'boot');
    const first = makeReceipt(80);
    await writeRun(w, first);
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    const mirrored = await readPointer(w.objects, w.bucket, 'lines');
    expect(mirrored).toBeDefined();

    // The volume is lost (new PV); S3 still has the snapshot.
    await rm(w.root, { recursive: true, force: true });
    const second = makeReceipt(81);
    await writeRun(w, second);
    await pumpStream(w);
    await compactorFor(w, 'c2', {}, 3000).run(new AbortController().signal);
    for (const c of COLLECTIONS) {
      const live = await dumpLive(w.root, c, w.dir);
      expect([...live.records.keys()].sort()).toEqual([...expectedUnion([first, second], c).keys()].sort());
    }
    expect(await readCurrent(w.root, 'lines')).not.toBe(mirrored); // restored version + one publish on top
  });

  it('keeps the newest K versions on the volume (after the grace period) and on S3', async () => {
    const w = await makeWorld(env, 'retain');
    for (let i = 0; i < 4; i++) {
      await writeRun(w, makeReceipt(90 + i));
      await pumpStream(w);
      await compactorFor(w, 'c1', { keepVersions: 2, graceMs: 0, s3Keep: 2 }).run(
        new AbortController().signal,
      );
    }
    const current = await readCurrent(w.root, 'lines');
    const versions = await listVersions(w.root, 'lines');
    expect(versions.length).toBeLessThanOrEqual(2);
    expect(versions).toContain(current);
    const objs = await w.objects.list(w.bucket, 'lines/snapshot/timestamped/');
    const s3Versions = new Set(objs.map((o) => o.key.split('/')[3]));
    expect(s3Versions.size).toBeLessThanOrEqual(2);
    expect(s3Versions.has(await readPointer(w.objects, w.bucket, 'lines'))).toBe(true);
    // And the live version still holds all four receipts.
    expect((await dumpLive(w.root, 'lines', w.dir)).records.size).toBe(12);
  });

  it('no volume and no pointer: nothing is published until something changes', async () => {
    const w = await makeWorld(env, 'empty');
    await compactorFor(w, 'c1').run(new AbortController().signal);
    expect(await readCurrent(w.root, 'lines')).toBeUndefined();
    expect(await readPointer(w.objects, w.bucket, 'lines')).toBeUndefined();
  });
});

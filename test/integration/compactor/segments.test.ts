// Immutable segments shared between versions (docs/adr/0012-immutable-segments.md), over real moto and real Chroma:
// the hot segment is sealed past COMPACTOR_SEAL_VECTORS, later versions hard-link the sealed files (same inode),
// replacements and deletes of sealed records become tombstones, sealed segments are merged with the tombstoned
// records folded in, and every reader sees exactly the union.
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { COLLECTIONS, type Collection } from '../../../core/contracts/ids.js';
import { SEALED_DIR } from '../../../core/segments/manifest.js';
import { openSegments } from '../../../core/segments/open.js';
import { restoreSnapshot, segmentKey } from '../../../core/snapshot/s3-snapshot.js';
import { checkArchive } from '../../../cli/commands/snapshot/verify.js';
import {
  checkVersion,
  copyVersion,
  listVersions,
  readCurrent,
  readManifest,
  VERSION_INFO,
  versionDir,
} from '../../../core/snapshot/volume.js';
import type { VectorRecord } from '../../../core/ports/vector-store.js';
import {
  compactSealingAt10,
  dumpDir,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  writeRun,
  type Receipt,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

async function expectLive(w: World, want: (c: Collection) => Map<string, VectorRecord>): Promise<void> {
  for (const c of COLLECTIONS) {
    const live = await dumpLive(w.root, c, w.dir);
    const expected = want(c);
    expect([...live.records.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [id, rec] of expected) {
      expect(live.records.get(id)!.embedding).toEqual(Array.from(rec.embedding));
      expect(live.records.get(id)!.document).toBe(rec.document);
    }
  }
}

const sq = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0);

describe('immutable segments', () => {
  it('seals past the threshold; later versions share the sealed files (same inode); replaces and deletes of sealed records are tombstones; readers, queries and the S3 restore see exactly the union', async () => {
    const w = await makeWorld(env, 'segments');
    const row = { PK: '', SK: 'RECEIPT#00001' };
    const first = makeReceipt(70, { lines: 12, words: 1 });
    const doomed = makeReceipt(71, { lines: 3, words: 1 });
    row.PK = `IMAGE#${doomed.imageId}`;
    await w.ledger.putItem(row);
    await writeRun(w, first);
    await writeRun(w, doomed);
    await compactSealingAt10(w);

    // 12 (or 15, when both runs came in one batch) vectors per collection ≥ 10: the publish was followed by a seal.
    const sealedVersion = (await readCurrent(w.root, 'lines'))!;
    const m1 = await readManifest(versionDir(w.root, 'lines', sealedVersion));
    expect(m1.segments).toHaveLength(1);
    expect(m1.segments[0]!.count).toBeGreaterThanOrEqual(12);
    await expectLive(w, (c) => expectedUnion([first, doomed], c));

    // Re-embedded receipt (same ids, new vectors) + a new one + the doomed receipt deleted from the ledger.
    const again: Receipt = { ...makeReceipt(72, { lines: 12, words: 1, imageId: first.imageId }) };
    const third = makeReceipt(73, { lines: 2, words: 1 });
    await writeRun(w, again);
    await writeRun(w, third);
    await w.ledger.deleteItem(row);
    await compactSealingAt10(w);

    const live = (await readCurrent(w.root, 'lines'))!;
    expect(live).not.toBe(sealedVersion);
    // The publish of the second batch: the sealed segment shared (same inode), the replaced 12 (and the deleted 3
    // when they were sealed with them) are its tombstones; nothing of it was rewritten.
    const first1 = m1.segments[0]!;
    let shared: string | undefined;
    for (const v of await listVersions(w.root, 'lines')) {
      const m = await readManifest(versionDir(w.root, 'lines', v));
      if (m.segments.length === 1 && m.segments[0]!.id === first1.id && m.tombstones[first1.id]?.length)
        shared = v;
    }
    expect(shared).toBeDefined();
    const mShared = await readManifest(versionDir(w.root, 'lines', shared!));
    expect(mShared.tombstones[first1.id]).toHaveLength(first1.count);
    for (const f of Object.keys(first1.files)) {
      const a = await stat(join(versionDir(w.root, 'lines', sealedVersion), SEALED_DIR, first1.id, f));
      const b = await stat(join(versionDir(w.root, 'lines', shared!), SEALED_DIR, first1.id, f));
      expect(b.ino).toBe(a.ino);
    }
    // Then 14 vectors in the hot segment ≥ 10: sealed, and the two sealed segments merged in the background
    // (compactor/merge-policy.ts) into one, the tombstoned records folded in: no tombstone left, 14 records.
    const m2 = await readManifest(versionDir(w.root, 'lines', live));
    expect(m2.segments).toHaveLength(1);
    expect(m2.segments[0]!.id).not.toBe(first1.id);
    expect(m2.segments[0]!.count).toBe(14);
    expect(m2.tombstones).toEqual({});
    expect(await checkVersion(versionDir(w.root, 'lines', live))).toBeUndefined();
    const want = (c: Collection) => expectedUnion([again, third], c);
    await expectLive(w, want);

    // A query over the segments returns exactly the brute-force nearest live records (tombstoned ones never).
    const scratch = await mkdtemp(join(w.dir, 'q-'));
    await copyVersion(versionDir(w.root, 'lines', live), join(scratch, 'v'));
    const open = await openSegments(join(scratch, 'v'));
    try {
      const records = [...want('lines').values()];
      for (const probe of [first.lines[0]!, doomed.lines[1]!, third.lines[0]!]) {
        const hits = await open.store.query('lines', probe.embedding, 5);
        const brute = records
          .map((r) => ({ id: r.id, d: sq(r.embedding, probe.embedding) }))
          .sort((a, b) => a.d - b.d)
          .slice(0, 5);
        expect(hits.map((h) => h.id)).toEqual(brute.map((b) => b.id));
      }
      expect(await open.store.count('lines')).toBe(14);
    } finally {
      await open.close();
    }

    // The S3 snapshot (uploaded at shutdown) restores by its manifest to the live records.
    const restored = await mkdtemp(join(w.dir, 'restore-'));
    await restoreSnapshot(w.objects, w.bucket, 'lines', restored);
    expect(JSON.parse(await readFile(join(restored, VERSION_INFO), 'utf8')).version).toBe(live);
    const fromS3 = await dumpDir(restored, 'lines');
    expect([...fromS3.keys()].sort()).toEqual([...want('lines').keys()].sort());

    // `embedctl snapshot verify` checks the archive of every sealed segment the mirrored manifest lists.
    const mirror = { store: w.objects, bucket: w.bucket };
    expect(await checkArchive(mirror, 'lines', live)).toEqual([]);
    const segKey = segmentKey('lines', m2.segments[0]!.id);
    await w.objects.put(w.bucket, segKey, Buffer.from('not the segment'));
    expect(await checkArchive(mirror, 'lines', live)).toEqual([
      expect.stringMatching(
        new RegExp(`^segment ${m2.segments[0]!.id} archive sha256 [0-9a-f]{64} does not match`),
      ),
    ]);
    await w.objects.delete(w.bucket, segKey);
    expect(await checkArchive(mirror, 'lines', live)).toEqual([
      `no archive ${segKey} of sealed segment ${m2.segments[0]!.id} in the object store`,
    ]);
  });
});

// A published version that is a manifest of segments (docs/adr/0012-immutable-segments.md) read by the original's
// library, Python chromadb 1.5.x, segment by segment (test/fixtures/lambda/read_version.py): the same live records as
// this project's segmented reader, tombstoned ones never, and the same exact top-k for merchant-style queries.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { openSegments } from '../../../core/segments/open.js';
import { copyVersion, listVersions, readManifest, versionDir } from '../../../core/snapshot/volume.js';
import { readVersionWithChromadbPy } from '../../support/lambda-fixtures.js';
import { compactSealingAt10, dumpDir, makeReceipt, makeWorld, writeRun } from '../compactor/fixtures.js';

const env = inject('testEnv');

describe('a segmented version opens with Python chromadb 1.5.x', () => {
  it('segment by segment, tombstones applied: the same live records and the same exact top-k as the TypeScript reader', async () => {
    const w = await makeWorld(env, 'py-segments');
    // 12 vectors per collection ≥ 10: sealed. Then 4 of them re-embedded (tombstoned in the sealed segment, live in
    // the hot one) and 2 new ones: a version with a sealed segment, tombstones and a hot segment.
    const first = makeReceipt(90, { lines: 12, words: 1 });
    await writeRun(w, first);
    await compactSealingAt10(w);
    await writeRun(w, makeReceipt(91, { lines: 4, words: 1, imageId: first.imageId }));
    await writeRun(w, makeReceipt(92, { lines: 2, words: 1 }));
    await compactSealingAt10(w);

    // The version published before the background merge folded the tombstones in (compactor/merge-policy.ts).
    let live: string | undefined;
    for (const v of await listVersions(w.root, 'lines')) {
      const m = await readManifest(versionDir(w.root, 'lines', v));
      if (m.segments.length === 1 && Object.values(m.tombstones).flat().length > 0) live = v;
    }
    expect(live).toBeDefined();

    const copy = join(await mkdtemp(join(w.dir, 'py-')), 'v');
    await copyVersion(versionDir(w.root, 'lines', live!), copy);
    const want = await dumpDir(copy, 'lines');
    const probes = [...want.values()].slice(0, 4).map((r) => Float32Array.from(r.embedding));
    const py = readVersionWithChromadbPy(copy, 'lines', probes[0]!.length, probes, 5);

    expect(py.ids).toEqual([...want.keys()].sort());
    py.ids.forEach((id, k) => {
      const r = want.get(id)!;
      expect(py.documents[k]).toBe(r.document);
      expect(py.metadatas[k]).toEqual(r.metadata);
      if (!py.embeddings[k]!.every((x, j) => Object.is(x, r.embedding[j])))
        expect.fail(`${id}: vector differs`);
    });

    const open = await openSegments(copy);
    try {
      for (const [q, probe] of probes.entries()) {
        const ts = await open.store.query('lines', probe, 5);
        expect(py.nearest.ids[q]).toEqual(ts.map((h) => h.id));
      }
    } finally {
      await open.close();
    }
  });
});

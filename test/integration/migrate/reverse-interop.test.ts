// The other way round (issue 15 item 4): a version this project published opens with the original's library,
// Python chromadb 1.5.x PersistentClient, and returns the same ids, documents, metadata and float32 vectors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startChromaServer } from '../../../core/chroma/server.js';
import { ChromaVectorStore } from '../../../core/chroma/store.js';
import type { VectorRecord } from '../../../core/ports/vector-store.js';
import { copyVersion, installVersion } from '../../../core/snapshot/volume.js';
import { readWithChromadbPy } from '../../support/lambda-fixtures.js';

const DIM = 1536;

function records(n: number): VectorRecord[] {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: n }, (_, i) => {
    const v = Float32Array.from({ length: DIM }, rnd);
    const norm = Math.hypot(...v);
    const id = `IMAGE#3f0c5e2a-7d41-4b8e-9a6f-1c2d3e4f5a6b#RECEIPT#00001#LINE#${String(i).padStart(5, '0')}#WORD#00001`;
    return {
      id,
      document: `word ${i}`,
      metadata: {
        image_id: '3f0c5e2a-7d41-4b8e-9a6f-1c2d3e4f5a6b',
        receipt_id: 1,
        line_id: i,
        word_id: 1,
        x: Math.fround(i / n),
        merchant_name: i % 3 ? 'Blue Bottle Coffee' : '',
        valid_labels: i % 2 ? 'DATE,TOTAL' : 'PRODUCT_NAME',
        is_noise: false,
      },
      embedding: v.map((x) => x / norm),
    };
  });
}

describe('a published version opens with Python chromadb 1.5.x', () => {
  it('same ids, documents, metadata and float32 vectors', async () => {
    const written = records(1200); // past Chroma's HNSW persist threshold: index files and log both in play
    const work = mkdtempSync(join(tmpdir(), 'reverse-'));
    const server = await startChromaServer({ path: join(work, 'chroma') });
    try {
      await new ChromaVectorStore(server.url).upsert('words', written);
    } finally {
      await server.stop();
    }
    // Installed on a volume as a version, then copied out the way every reader gets it.
    const root = join(work, 'volume');
    await installVersion(root, 'words', '20260801T000000000Z-abcdef', join(work, 'chroma'));
    const copy = join(work, 'copy');
    await copyVersion(join(root, 'words', 'versions', '20260801T000000000Z-abcdef'), copy);

    const got = readWithChromadbPy(copy, 'words', DIM);
    const want = [...written].sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(got.ids).toEqual(want.map((r) => r.id));
    want.forEach((r, k) => {
      expect(got.documents[k]).toBe(r.document);
      // Float metadata crosses Chroma's Rust JSON path, which may round a double by one ulp (0.010833333246409893
      // came back as …891): equal to 15 significant digits; everything else exactly.
      const m = got.metadatas[k]!;
      expect(Object.keys(m).sort()).toEqual(Object.keys(r.metadata).sort());
      for (const [key, v] of Object.entries(r.metadata)) {
        if (typeof v === 'number' && !Number.isInteger(v)) expect(m[key] as number).toBeCloseTo(v, 15);
        else expect(m[key]).toBe(v);
      }
      if (!got.embeddings[k]!.every((x, j) => Object.is(x, r.embedding[j])))
        expect.fail(`${r.id}: vector differs`);
    });
  });
});

import { describe, expect, it } from 'vitest';
import { rerankByDocument, rerankPool } from '../../../../core/embedding/rerank.js';
import type { Embedder } from '../../../../core/ports/embedder.js';
import type { QueryHit } from '../../../../core/ports/vector-store.js';

/** Two-dimensional unit vectors by name: enough to place documents relative to the query. */
const AXIS: Record<string, Float32Array> = {
  TOTAL: Float32Array.of(1, 0),
  'TOTAL 26.99': Float32Array.of(0.8, 0.6),
  'DEBIT ****7532 26.99': Float32Array.of(0, 1),
};
const embedder: Embedder & { calls: string[][] } = {
  model: 'axes',
  dimensions: 2,
  calls: [],
  async embed(texts) {
    this.calls.push(texts);
    return texts.map((t) => AXIS[t] ?? Float32Array.of(0, 1));
  },
};
const hit = (id: string, similarity: number, document: string | null): QueryHit => ({
  id,
  distance: 2 - 2 * similarity,
  document,
  metadata: null,
});

describe('re-ranking free-text hits by their own text', () => {
  it('puts the row that says it above the neighbour whose window is closer', async () => {
    const pool = [
      hit('payment', 0.5, 'DEBIT ****7532 26.99'),
      hit('total', 0.45, 'TOTAL 26.99'),
      hit('blank', 0.44, null),
    ];
    embedder.calls = [];
    const ranked = await rerankByDocument(embedder, AXIS.TOTAL!, pool, 2);
    expect(ranked.map((h) => h.id)).toEqual(['total', 'blank']);
    expect(ranked[0]!.similarity).toBeCloseTo((0.45 + 0.8) / 2, 5);
    // A hit without a document keeps its window score.
    expect(ranked[1]!.similarity).toBeCloseTo(0.44, 5);
    expect(embedder.calls).toHaveLength(1);
  });

  it('looks at 50 windows at least, 4 per result beyond that', () => {
    expect([rerankPool(3), rerankPool(20)]).toEqual([50, 80]);
  });
});

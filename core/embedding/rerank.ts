import { similarity } from '../contracts/vector-distance.js';
import type { Embedder } from '../ports/embedder.js';
import type { QueryHit } from '../ports/vector-store.js';

/** A hit of a free-text query, with the score it is ranked by. */
export type RankedHit = QueryHit & { similarity: number };

/**
 * How many nearest windows to re-rank for `n` results: enough to hold the rows around each match (on the demo's
 * receipts the 12 windows nearest to "TOTAL" are all payment rows under a total).
 */
export function rerankPool(n: number): number {
  return Math.max(4 * n, 50);
}

/**
 * Ranks the nearest windows of a free-text query by the text's closeness to the window *and* to the hit's own text.
 *
 * A stored vector embeds a row with the rows above and below it, a word with two neighbours each side
 * (docs/adr/0010-embedding-inputs-and-metadata.md), so the windows nearest to "TOTAL" include the payment row under
 * the total, whose window holds the word TOTAL too. Scoring each of the `pool` nearest by the mean of the two
 * cosines puts the row that says it first and keeps the context as the tie-breaker. Costs one embedding call of the
 * hits' documents (short texts). Hits without a document keep their window score.
 */
export async function rerankByDocument(
  embedder: Embedder,
  query: Float32Array,
  pool: QueryHit[],
  n: number,
): Promise<RankedHit[]> {
  const texts = pool.map((h) => h.document ?? '');
  const docs = texts.some((t) => t) ? await embedder.embed(texts) : [];
  return pool
    .map((h, i) => {
      const window = similarity(h.distance);
      if (!h.document) return { ...h, similarity: window };
      return { ...h, similarity: (window + Math.max(0, dot(query, docs[i]!))) / 2 };
    })
    .sort((a, b) => b.similarity - a.similarity || a.distance - b.distance)
    .slice(0, n);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

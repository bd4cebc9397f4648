import { describe, expect, it } from 'vitest';
import type { QueryHit, VectorStore } from '../../../core/ports/vector-store.js';
import { batchedQueries } from '../../../worker/batched-queries.js';

/** Each embedding's single hit names the embedding's first component, so answers can be matched to questions. */
const hitOf = (e: Float32Array): QueryHit[] => [
  { id: `v${e[0]}`, distance: 0, document: null, metadata: null },
];

function fakeStore(withQueryMany: boolean) {
  const calls = { query: 0, queryMany: [] as number[] };
  const store = {
    query: async (_c: string, e: Float32Array) => {
      calls.query++;
      return hitOf(e);
    },
    ...(withQueryMany
      ? {
          queryMany: async (_c: string, es: Float32Array[]) => {
            calls.queryMany.push(es.length);
            return es.map(hitOf);
          },
        }
      : {}),
  } as unknown as VectorStore;
  return { store, calls };
}

const vectors = Array.from({ length: 5 }, (_, i) => Float32Array.of(i));

describe('batchedQueries', () => {
  it('returns a store without the queryMany capability unchanged', () => {
    const { store } = fakeStore(false);
    expect(batchedQueries(store)).toBe(store);
  });

  it('sends the queries issued together as few queryMany requests and answers each with its own hits', async () => {
    const { store, calls } = fakeStore(true);
    const batched = batchedQueries(store, { maxPerRequest: 2, concurrency: 1 });
    const hits = await Promise.all(vectors.map((v) => batched.query('lines', v, 3)));
    expect(hits.map((h) => h[0]?.id)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(calls).toEqual({ query: 0, queryMany: [2, 2, 1] });
  });

  it('sends a filtered query alone, through query', async () => {
    const { store, calls } = fakeStore(true);
    const hits = await batchedQueries(store).query('lines', vectors[3]!, 3, { receipt_id: 1 });
    expect(hits[0]?.id).toBe('v3');
    expect(calls).toEqual({ query: 1, queryMany: [] });
  });
});

import type { Collection } from '../core/contracts/ids.js';
import type { QueryHit, VectorStore } from '../core/ports/vector-store.js';

interface PendingQuery {
  embedding: Float32Array;
  resolve(hits: QueryHit[]): void;
  reject(err: unknown): void;
}

/**
 * Wraps the batch's `lines` snapshot so that the merchant queries of many receipts go to the store together: every
 * `query()` without a `where` filter is queued, and the queue is sent as one `queryMany` with many query embeddings
 * (at most `maxPerRequest`, at most `concurrency` requests in flight; whatever arrives meanwhile waits for the next
 * one). One Chroma request per receipt tier costs far more than the search itself, on both sides: 150 single
 * queries took ~0.6 s of Chroma CPU and ~0.4 s of worker CPU, the same 150 in batches of 15 ~0.1 s each.
 * Results are exactly those of single queries. A store without the `queryMany` capability is returned unchanged.
 */
export function batchedQueries(
  store: VectorStore,
  opts: { maxPerRequest?: number; concurrency?: number } = {},
): VectorStore {
  const queryMany = store.queryMany?.bind(store);
  if (!queryMany) return store;
  const maxPerRequest = opts.maxPerRequest ?? 64;
  const concurrency = opts.concurrency ?? 2;
  const queues = new Map<string, { collection: Collection; nResults: number; pending: PendingQuery[] }>();
  let inFlight = 0;
  let scheduled = false;

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // One macrotask: the receipts whose vectors arrived in the same embedding response all queue first.
    setImmediate(() => {
      scheduled = false;
      pump();
    });
  };

  const pump = () => {
    for (const [key, q] of queues) {
      while (inFlight < concurrency && q.pending.length > 0) {
        const batch = q.pending.splice(0, maxPerRequest);
        inFlight++;
        void send(q.collection, q.nResults, batch).finally(() => {
          inFlight--;
          pump();
        });
      }
      if (q.pending.length === 0) queues.delete(key);
    }
  };

  const send = async (collection: Collection, nResults: number, batch: PendingQuery[]) => {
    try {
      const hits = await queryMany(
        collection,
        batch.map((p) => p.embedding),
        nResults,
      );
      batch.forEach((p, k) => p.resolve(hits[k] ?? []));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  };

  return {
    upsert: (collection, records) => store.upsert(collection, records),
    updateMetadata: (collection, updates) => store.updateMetadata(collection, updates),
    delete: (collection, ids) => store.delete(collection, ids),
    get: (collection, args) => store.get(collection, args),
    count: (collection) => store.count(collection),
    query(collection, embedding, nResults, where) {
      if (where) return store.query(collection, embedding, nResults, where);
      return new Promise<QueryHit[]>((resolve, reject) => {
        const key = `${collection}\u0000${nResults}`;
        let q = queues.get(key);
        if (!q) queues.set(key, (q = { collection, nResults, pending: [] }));
        q.pending.push({ embedding, resolve, reject });
        schedule();
      });
    },
  };
}

import type { Collection } from '../contracts/ids.js';
import type { QueryHit, VectorStore } from '../ports/vector-store.js';

/** One segment of a version as a reader sees it: its store and the ids it no longer holds live. */
export interface ReadSegment {
  /** The sealed segment id, or 'hot'. */
  readonly id: string;
  readonly store: VectorStore;
  readonly tombstones: ReadonlySet<string>;
}

type GetArgs = Parameters<VectorStore['get']>[1];
type GetResult = Awaited<ReturnType<VectorStore['get']>>;

/** Page size when a get without ids has to filter tombstones out of a segment's pages. */
const PAGE = 1000;

/**
 * The records of one version, read over all its segments (oldest first, hot last): every read asks every segment and
 * leaves out the ids a segment's tombstones name. The writer keeps each id live in at most one segment
 * (core/segments/manifest.ts), so results are unions, and a query's top-k is the k nearest of the segments' hits.
 *
 * Exact top-k: a segment asked for k hits may return tombstoned ones, which leave fewer than k of its live records.
 * Asking it for k + t (t = its tombstone count) always leaves ≥ k live ones when it has them; that can be large, so a
 * segment is first asked for k + min(t, k) and asked again for k + t only when its live hits came out short while it
 * returned all that were asked (so more may exist). Read-only: the writes of VectorStore throw.
 */
export class SegmentedStore implements VectorStore {
  /** Live records per segment, read once: a snapshot never changes, and a segment without any is not asked. */
  private readonly live = new Map<Collection, Promise<number[]>>();

  constructor(readonly segments: readonly ReadSegment[]) {}

  private liveCounts(collection: Collection): Promise<number[]> {
    let live = this.live.get(collection);
    if (!live) {
      live = Promise.all(
        this.segments.map(async (s) => (await s.store.count(collection)) - s.tombstones.size),
      );
      live.catch(() => this.live.delete(collection));
      this.live.set(collection, live);
    }
    return live;
  }

  async count(collection: Collection): Promise<number> {
    return (await this.liveCounts(collection)).reduce((a, b) => a + b, 0);
  }

  async get(collection: Collection, args: GetArgs): Promise<GetResult> {
    const include = args.include ?? ['documents', 'metadatas'];
    const out: GetResult = {
      ids: [],
      documents: [],
      metadatas: [],
      ...(include.includes('embeddings') ? { embeddings: [] } : {}),
    };
    const push = (r: GetResult, j: number) => {
      out.ids.push(r.ids[j]!);
      out.documents.push(r.documents[j] ?? null);
      out.metadatas.push(r.metadatas[j] ?? null);
      if (out.embeddings && r.embeddings) out.embeddings.push(r.embeddings[j]!);
    };
    if (args.ids) {
      const parts = await Promise.all(
        this.segments.map((s) => s.store.get(collection, { ...args, include })),
      );
      parts.forEach((r, i) => {
        const t = this.segments[i]!.tombstones;
        r.ids.forEach((id, j) => {
          if (!t.has(id)) push(r, j);
        });
      });
      return out;
    }
    // Paged over the segments in order (offset and limit over their live records, in that order).
    let skip = args.offset ?? 0;
    let want = args.limit ?? Number.POSITIVE_INFINITY;
    for (const s of this.segments) {
      if (want <= 0) break;
      if (!s.tombstones.size && !args.where) {
        // Nothing to filter: skip or slice with the segment's own offset and limit.
        const n = await s.store.count(collection);
        if (skip >= n) {
          skip -= n;
          continue;
        }
        const limit = Math.min(want, n - skip);
        const r = await s.store.get(collection, { include, offset: skip, limit });
        r.ids.forEach((_, j) => push(r, j));
        want -= r.ids.length;
        skip = 0;
        continue;
      }
      for (let offset = 0; want > 0; offset += PAGE) {
        const r = await s.store.get(collection, { include, where: args.where, offset, limit: PAGE });
        for (let j = 0; j < r.ids.length && want > 0; j++) {
          if (s.tombstones.has(r.ids[j]!)) continue;
          if (skip > 0) skip--;
          else {
            push(r, j);
            want--;
          }
        }
        if (r.ids.length < PAGE) break;
      }
    }
    return out;
  }

  async query(
    collection: Collection,
    embedding: Float32Array,
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[]> {
    return (await this.queryMany(collection, [embedding], nResults, where))[0] ?? [];
  }

  /** Every segment at once, each over-fetching past its tombstones; the k nearest of all, by distance. */
  async queryMany(
    collection: Collection,
    embeddings: Float32Array[],
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[][]> {
    const live = await this.liveCounts(collection);
    const perSegment = await Promise.all(
      this.segments.map((s, i) =>
        live[i]! > 0
          ? queryLive(s, collection, embeddings, nResults, where)
          : Promise.resolve(embeddings.map(() => [])),
      ),
    );
    return embeddings.map((_, q) =>
      mergeTopK(
        perSegment.map((hits) => hits[q]!),
        nResults,
      ),
    );
  }

  upsert(): Promise<void> {
    return readOnly();
  }
  updateMetadata(): Promise<void> {
    return readOnly();
  }
  delete(): Promise<void> {
    return readOnly();
  }
}

/** The k nearest of several sorted hit lists (ties: the earlier segment first, as Chroma's order within one). */
export function mergeTopK(lists: QueryHit[][], k: number): QueryHit[] {
  return lists
    .flat()
    .map((h, i) => ({ h, i }))
    .sort((a, b) => a.h.distance - b.h.distance || a.i - b.i)
    .slice(0, k)
    .map((x) => x.h);
}

/** One segment's live hits for each query embedding: at least min(k, live matches) of them (see SegmentedStore). */
async function queryLive(
  s: ReadSegment,
  collection: Collection,
  embeddings: Float32Array[],
  k: number,
  where: Record<string, unknown> | undefined,
): Promise<QueryHit[][]> {
  const t = s.tombstones.size;
  const ask = (n: number, es: Float32Array[]) => queryMany(s.store, collection, es, n, where);
  const first = k + Math.min(t, k);
  const got = (await ask(first, embeddings)).map((hits) => ({ hits, live: live(hits, s.tombstones) }));
  const short = got.flatMap((g, q) =>
    g.live.length < k && g.hits.length >= first && first < k + t ? [q] : [],
  );
  if (short.length) {
    const again = await ask(
      k + t,
      short.map((q) => embeddings[q]!),
    );
    short.forEach((q, i) => (got[q]!.live = live(again[i]!, s.tombstones)));
  }
  return got.map((g) => g.live.slice(0, k));
}

const live = (hits: QueryHit[], tombstones: ReadonlySet<string>) => hits.filter((h) => !tombstones.has(h.id));

function queryMany(
  store: VectorStore,
  collection: Collection,
  embeddings: Float32Array[],
  n: number,
  where: Record<string, unknown> | undefined,
): Promise<QueryHit[][]> {
  if (store.queryMany) return store.queryMany(collection, embeddings, n, where);
  return Promise.all(embeddings.map((e) => store.query(collection, e, n, where)));
}

function readOnly(): Promise<never> {
  return Promise.reject(new Error('a segmented snapshot is read-only'));
}

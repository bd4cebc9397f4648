import { describe, expect, it } from 'vitest';
import type { Collection } from '../../../../core/contracts/ids.js';
import { ManifestInvalidError, parseManifest, segmentId } from '../../../../core/segments/manifest.js';
import { SegmentedStore, type ReadSegment } from '../../../../core/segments/segmented-store.js';
import type { QueryHit, VectorStore } from '../../../../core/ports/vector-store.js';

/** An exact in-memory store (brute force, squared L2), counting the nResults it was asked for. */
class MemoryStore implements VectorStore {
  asked: number[] = [];
  constructor(private readonly recs: { id: string; e: number[] }[]) {}
  upsert = () => Promise.resolve();
  updateMetadata = () => Promise.resolve();
  delete = () => Promise.resolve();
  count = () => Promise.resolve(this.recs.length);
  get(_c: Collection, a: Parameters<VectorStore['get']>[1]) {
    let rs = a.ids ? this.recs.filter((r) => a.ids!.includes(r.id)) : this.recs;
    rs = rs.slice(a.offset ?? 0, (a.offset ?? 0) + (a.limit ?? rs.length));
    return Promise.resolve({
      ids: rs.map((r) => r.id),
      documents: rs.map((r) => r.id),
      metadatas: rs.map(() => ({})),
      embeddings: rs.map((r) => Float32Array.from(r.e)),
    });
  }
  query(_c: Collection, e: Float32Array, n: number): Promise<QueryHit[]> {
    this.asked.push(n);
    return Promise.resolve(
      this.recs
        .map((r) => ({
          id: r.id,
          distance: r.e.reduce((s, x, i) => s + (x - e[i]!) ** 2, 0),
          document: r.id,
          metadata: {},
        }))
        .sort((a, b) => a.distance - b.distance)
        .slice(0, n),
    );
  }
}

const pts = (prefix: string, xs: number[]) => xs.map((x, i) => ({ id: `${prefix}${i}`, e: [x, 0] }));

function twoSegments(tombstoned: string[]) {
  const a = new MemoryStore(pts('a', [0, 1, 2, 3, 4, 5, 6, 7]));
  const hot = new MemoryStore(pts('h', [0.5, 2.5, 9]));
  const segments: ReadSegment[] = [
    { id: 'a', store: a, tombstones: new Set(tombstoned) },
    { id: 'hot', store: hot, tombstones: new Set() },
  ];
  return { a, hot, store: new SegmentedStore(segments) };
}

describe('SegmentedStore', () => {
  it('a query returns exactly the k nearest live records of all segments, never a tombstoned one', async () => {
    // a0..a3 (the four nearest of segment a) are tombstoned: asking a for k alone would leave it short.
    const { a, store } = twoSegments(['a0', 'a1', 'a2', 'a3']);
    const hits = await store.query('lines', Float32Array.from([0, 0]), 3);
    expect(hits.map((h) => h.id)).toEqual(['h0', 'h1', 'a4']);
    // First k + min(t, k) = 6, then k + t = 7 once its live hits came out short (2 < 3).
    expect(a.asked).toEqual([6, 7]);
  });

  it('asks a segment once when k + min(t, k) leaves k live hits', async () => {
    const { a, store } = twoSegments(['a7']);
    const hits = await store.query('lines', Float32Array.from([0, 0]), 2);
    expect(hits.map((h) => h.id)).toEqual(['a0', 'h0']);
    expect(a.asked).toEqual([3]);
  });

  it('count subtracts tombstones; get by ids and paged gets skip them, in segment order', async () => {
    const { store } = twoSegments(['a1', 'a2']);
    expect(await store.count('lines')).toBe(9);
    expect((await store.get('lines', { ids: ['a1', 'a3', 'h2'] })).ids).toEqual(['a3', 'h2']);
    const page1 = await store.get('lines', { limit: 4, offset: 0 });
    const page2 = await store.get('lines', { limit: 4, offset: 4 });
    const page3 = await store.get('lines', { limit: 4, offset: 8 });
    expect([...page1.ids, ...page2.ids, ...page3.ids]).toEqual([
      'a0',
      'a3',
      'a4',
      'a5',
      'a6',
      'a7',
      'h0',
      'h1',
      'h2',
    ]);
  });

  it('is read-only', async () => {
    await expect(twoSegments([]).store.delete()).rejects.toThrow(/read-only/);
  });
});

describe('segment manifest', () => {
  const files = { 'chroma.sqlite3': 'a'.repeat(64) };
  const id = segmentId(new Map(Object.entries(files)));

  it('parses a version without segments as empty, and checks ids against files and tombstones against segments', () => {
    expect(parseManifest({ files: {} }, 'v')).toEqual({ segments: [], tombstones: {} });
    const ok = parseManifest({ segments: [{ id, count: 3, files }], tombstones: { [id]: ['x'] } }, 'v');
    expect(ok.tombstones[id]).toEqual(['x']);
    expect(() => parseManifest({ segments: [{ id: 'f'.repeat(32), count: 3, files }] }, 'v')).toThrow(
      ManifestInvalidError,
    );
    expect(() => parseManifest({ segments: [], tombstones: { [id]: ['x'] } }, 'v')).toThrow(
      /unlisted segment/,
    );
    expect(() =>
      parseManifest({ segments: [{ id, count: 3, files: { '../x': 'a'.repeat(64) } }] }, 'v'),
    ).toThrow(ManifestInvalidError);
  });
});

import { describe, expect, it } from 'vitest';
import type { Metadata, VectorRecord } from '../../../core/ports/vector-store.js';
import { planRestamp, planUpserts, type StoredRecord } from '../../../compactor/upsert-plan.js';

const rec = (over: Partial<VectorRecord> = {}): VectorRecord => ({
  id: 'a',
  document: 'TOTAL',
  metadata: { text: 'TOTAL' },
  embedding: new Float32Array([1, 2]),
  ...over,
});

describe('how an incoming record reaches the working copy', () => {
  it.each<{ name: string; stored?: StoredRecord; incoming: VectorRecord; how: string }>([
    { name: 'a new id is added', incoming: rec(), how: 'add' },
    {
      name: 'the same vector, document and metadata is left alone',
      stored: rec(),
      incoming: rec(),
      how: 'unchanged',
    },
    {
      name: 'metadata equal but for null (absent) keys is unchanged',
      stored: rec(),
      incoming: rec({ metadata: { text: 'TOTAL', place_id: null } }),
      how: 'unchanged',
    },
    {
      name: 'a changed or added metadata key is an update',
      stored: rec(),
      incoming: rec({ metadata: { text: 'TOTAL', place_id: 'P' } }),
      how: 'update',
    },
    {
      name: 'a removed metadata key cannot be an update (Chroma merges metadata): replaced',
      stored: rec({ metadata: { text: 'TOTAL', place_id: 'P' } }),
      incoming: rec({ metadata: { text: 'TOTAL', place_id: null } }),
      how: 'replace',
    },
    {
      name: 'another vector is replaced',
      stored: rec(),
      incoming: rec({ embedding: new Float32Array([1, 3]) }),
      how: 'replace',
    },
    {
      name: 'a vector of another length is replaced',
      stored: rec(),
      incoming: rec({ embedding: new Float32Array([1, 2, 0]) }),
      how: 'replace',
    },
    {
      name: 'another document is replaced',
      stored: rec(),
      incoming: rec({ document: 'TAX' }),
      how: 'replace',
    },
    {
      name: 'a stored record read without its embedding is replaced',
      stored: { id: 'a', document: 'TOTAL', metadata: { text: 'TOTAL' } },
      incoming: rec(),
      how: 'replace',
    },
  ])('$name', ({ stored, incoming, how }) => {
    const got = planUpserts([incoming], new Map(stored ? [[stored.id, stored]] : []));
    const kinds = [
      ...got.toAdd.map(() => 'add'),
      ...got.toReplace.map(() => 'replace'),
      ...got.toUpdate.map(() => 'update'),
      ...Array.from({ length: got.unchanged }, () => 'unchanged'),
    ];
    expect(kinds).toEqual([how]);
    if (how === 'update')
      expect(got.toUpdate).toEqual([{ id: 'a', metadata: { text: 'TOTAL', place_id: 'P' } }]);
    if (how === 'replace' || how === 'add') expect([...got.toAdd, ...got.toReplace]).toEqual([incoming]);
  });

  it('keeps the order of the incoming records in each list', () => {
    const stored = new Map([
      ['b', rec({ id: 'b' })],
      ['d', rec({ id: 'd' })],
    ]);
    const incoming = ['a', 'b', 'c', 'd'].map((id) => rec({ id, document: id === 'b' ? 'x' : 'TOTAL' }));
    const got = planUpserts(incoming, stored);
    expect(got.toAdd.map((r) => r.id)).toEqual(['a', 'c']);
    expect(got.toReplace.map((r) => r.id)).toEqual(['b']);
    expect(got.unchanged).toBe(1);
  });
});

describe('restamping the other stored vectors of a touched receipt', () => {
  const desired = (want: Metadata) => () => want;
  it.each<{ name: string; stored: Metadata; want: Metadata; how: 'none' | 'update' | 'replace' }>([
    { name: 'already right: left alone', stored: { a: 1 }, want: { a: 1, b: null }, how: 'none' },
    { name: 'a key set or changed: updated', stored: { a: 1 }, want: { a: 2, b: 'x' }, how: 'update' },
    {
      name: 'a key removed: replaced with the same vector',
      stored: { a: 1, b: 'x' },
      want: { a: 1, b: null },
      how: 'replace',
    },
  ])('$name', ({ stored, want, how }) => {
    const ex = rec({ metadata: stored });
    const got = planRestamp([ex], desired(want));
    expect(got.toUpdate).toEqual(how === 'update' ? [{ id: 'a', metadata: { a: 2, b: 'x' } }] : []);
    expect(got.toReplace).toEqual(
      how === 'replace' ? [{ id: 'a', document: 'TOTAL', metadata: want, embedding: ex.embedding }] : [],
    );
  });
});

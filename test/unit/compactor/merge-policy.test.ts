import { describe, expect, it } from 'vitest';
import { largestSegment, pickMerge, sealThreshold } from '../../../compactor/merge-policy.js';
import type { Manifest } from '../../../core/segments/manifest.js';

const seg = (id: string, count: number) => ({ id: id.repeat(32).slice(0, 32), count, files: {} });
const P = { sealVectors: 8000, mergeRatio: 0.05 };

describe('merge policy', () => {
  it('seals at sealVectors, or at mergeRatio of the largest live segment when that is more', () => {
    expect(sealThreshold(P, { segments: [], tombstones: {} })).toBe(8000);
    expect(sealThreshold(P, { segments: [seg('a', 70_000)], tombstones: {} })).toBe(8000);
    const big: Manifest = { segments: [seg('a', 280_000)], tombstones: {} };
    expect(sealThreshold(P, big)).toBe(14_000);
    big.tombstones[seg('a', 0).id] = Array.from({ length: 40_000 }, (_, i) => `x${i}`);
    expect(sealThreshold(P, big)).toBe(12_000);
  });

  it('merges every segment into the largest (by live records) as soon as there are two', () => {
    const m: Manifest = { segments: [seg('a', 10), seg('b', 30), seg('c', 5)], tombstones: {} };
    m.tombstones[seg('b', 0).id] = Array.from({ length: 25 }, (_, i) => `x${i}`);
    expect(largestSegment(m)).toEqual({ id: seg('a', 0).id, live: 10 });
    expect(pickMerge(P, m)).toEqual({ base: seg('a', 0).id, inputs: m.segments.map((s) => s.id) });
  });

  it('rewrites a lone segment once mergeRatio of it is tombstoned, not before', () => {
    const m: Manifest = { segments: [seg('a', 100)], tombstones: {} };
    expect(pickMerge(P, m)).toBeUndefined();
    m.tombstones[seg('a', 0).id] = ['1', '2', '3', '4'];
    expect(pickMerge(P, m)).toBeUndefined();
    m.tombstones[seg('a', 0).id]!.push('5');
    expect(pickMerge(P, m)).toEqual({ base: seg('a', 0).id, inputs: [seg('a', 0).id] });
    expect(pickMerge(P, { segments: [], tombstones: {} })).toBeUndefined();
  });
});

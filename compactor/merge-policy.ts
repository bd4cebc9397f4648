import type { Manifest } from '../core/segments/manifest.js';

/** The merge policy's knobs (compactor/config.ts): the seal's floor and the hot segment's share of the largest. */
export interface MergePolicy {
  /** The hot segment is never sealed below this many vectors. */
  sealVectors: number;
  /**
   * The hot segment is sealed once it holds this fraction of the largest sealed segment's live records (and at least
   * `sealVectors`); the largest segment is rewritten alone once this fraction of its records are tombstoned.
   */
  mergeRatio: number;
}

/** A merge to do: rewrite `base` (a copy of it, tombstoned records deleted) with the live records of `inputs` added. */
export interface MergePlan {
  /** The largest segment, whose copy the merge starts from. */
  base: string;
  /** Every segment replaced by the merged one, `base` included, in manifest order. */
  inputs: string[];
}

const live = (m: Manifest, id: string, count: number) => count - (m.tombstones[id]?.length ?? 0);

/** The sealed segment with the most live records, or undefined without one. */
export function largestSegment(m: Manifest): { id: string; live: number } | undefined {
  let best: { id: string; live: number } | undefined;
  for (const s of m.segments) {
    const n = live(m, s.id, s.count);
    if (!best || n > best.live) best = { id: s.id, live: n };
  }
  return best;
}

/**
 * Vectors in the hot segment at which it is sealed (docs/adr/0012-immutable-segments.md, "Merge policy"): at least
 * `sealVectors`, and at least `mergeRatio` × the largest sealed segment's live records. The sealed segment is then
 * merged into the largest at once (pickMerge), so a reader asks one sealed segment and the hot one, and each merge —
 * which rewrites the largest segment — comes after ≥ mergeRatio × its size of new records: bytes written per changed
 * vector stay ≤ 2 + 1/mergeRatio, whatever the collection's size.
 */
export function sealThreshold(p: MergePolicy, m: Manifest): number {
  const largest = largestSegment(m)?.live ?? 0;
  return Math.max(p.sealVectors, Math.ceil(p.mergeRatio * largest));
}

/**
 * The merge due for `m`, if any: more than one sealed segment → all of them into one (starting from a copy of the
 * largest); one segment with ≥ mergeRatio of its records tombstoned → that one rewritten without them.
 */
export function pickMerge(p: MergePolicy, m: Manifest): MergePlan | undefined {
  const largest = largestSegment(m);
  if (!largest) return undefined;
  if (m.segments.length > 1) return { base: largest.id, inputs: m.segments.map((s) => s.id) };
  const only = m.segments[0]!;
  const dead = m.tombstones[only.id]?.length ?? 0;
  if (dead > 0 && dead >= p.mergeRatio * only.count) return { base: only.id, inputs: [only.id] };
  return undefined;
}

/**
 * The distance of every collection: squared L2 (Chroma's `l2`, the original system's default, so its snapshots can be
 * imported). Embeddings are unit vectors, so a distance d is 2 − 2·cos: 0 for the same direction, 4 for opposite.
 */
export const DISTANCE_SPACE = 'l2' as const;

/** Squared-L2 distance of unit vectors → cosine similarity, floored at 0 (anything unlike counts the same). */
export function similarity(distance: number): number {
  return Math.max(0, 1 - distance / 2);
}

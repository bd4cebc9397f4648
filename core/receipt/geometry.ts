import type { BoundingBox, LineRow, WordRow } from '../contracts/ndjson-rows.js';

/** Receipt coordinates are normalised 0–1 with y = 0 at the bottom (docs/adr/0009-wire-contracts.md). */
export type Shape = Pick<LineRow, 'bounding_box' | 'top_left' | 'top_right' | 'bottom_left' | 'bottom_right'>;

/** Centroid = mean of the four corner points. */
export function centroid(s: Shape): { x: number; y: number } {
  return {
    x: (s.top_left.x + s.top_right.x + s.bottom_left.x + s.bottom_right.x) / 4,
    y: (s.top_left.y + s.top_right.y + s.bottom_left.y + s.bottom_right.y) / 4,
  };
}

/** Smallest box holding every box. */
export function unionBox(boxes: BoundingBox[]): BoundingBox {
  if (boxes.length === 0) return { x: 0, y: 0, width: 0, height: 0 };
  const x0 = Math.min(...boxes.map((b) => b.x));
  const y0 = Math.min(...boxes.map((b) => b.y));
  const x1 = Math.max(...boxes.map((b) => b.x + b.width));
  const y1 = Math.max(...boxes.map((b) => b.y + b.height));
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Vertical spans [y, y+height] overlap (touching does not count). */
export function verticalOverlap(a: BoundingBox, b: BoundingBox): boolean {
  return a.y < b.y + b.height && b.y < a.y + a.height;
}

export function isNoise(row: Pick<LineRow | WordRow, 'is_noise' | 'embedding_status'>): boolean {
  return row.is_noise || row.embedding_status === 'NOISE';
}

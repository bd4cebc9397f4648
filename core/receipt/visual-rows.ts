import type { BoundingBox, LineRow } from '../contracts/ndjson-rows.js';
import { unionBox } from './geometry.js';

export const EDGE = '<EDGE>';

/** One printed row of the receipt: OCR lines that share a vertical band, left to right. */
export interface VisualRow {
  lines: LineRow[];
  /** Leftmost line: its id names the row's vector. */
  primary: LineRow;
  text: string;
  box: BoundingBox;
}

/**
 * Groups lines into visual rows (docs/adr/0010-embedding-inputs-and-metadata.md): lines i and j share a row if the
 * vertical centre of one lies within the other's [y, y+height]; rows are connected components (union-find, so
 * transitive). Lines in a row are sorted by x; rows by mean y descending (y grows upward, so the top of the receipt
 * comes first).
 */
export function visualRows(lines: LineRow[]): VisualRow[] {
  const parent = lines.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const inBand = (a: BoundingBox, b: BoundingBox) => {
    const centre = a.y + a.height / 2;
    return centre >= b.y && centre <= b.y + b.height;
  };
  for (let i = 0; i < lines.length; i++) {
    for (let j = i + 1; j < lines.length; j++) {
      const a = lines[i]!.bounding_box;
      const b = lines[j]!.bounding_box;
      if (inBand(a, b) || inBand(b, a)) parent[find(i)] = find(j);
    }
  }
  const groups = new Map<number, LineRow[]>();
  lines.forEach((line, i) => {
    const root = find(i);
    const g = groups.get(root);
    if (g) g.push(line);
    else groups.set(root, [line]);
  });
  const rows = [...groups.values()].map((group) => {
    const sorted = [...group].sort((a, b) => a.bounding_box.x - b.bounding_box.x || a.line_id - b.line_id);
    return {
      lines: sorted,
      primary: sorted[0]!,
      text: sorted.map((l) => l.text).join(' '),
      box: unionBox(sorted.map((l) => l.bounding_box)),
      meanY: sorted.reduce((s, l) => s + l.bounding_box.y, 0) / sorted.length,
    };
  });
  rows.sort((a, b) => b.meanY - a.meanY || a.primary.line_id - b.primary.line_id);
  return rows.map(({ lines: l, primary, text, box }) => ({ lines: l, primary, text, box }));
}

/** Embedding input of row i: the row above, the row, the row below, joined by newlines (`<EDGE>` at the ends). */
export function rowInput(rows: VisualRow[], i: number): string {
  return [rows[i - 1]?.text ?? EDGE, rows[i]!.text, rows[i + 1]?.text ?? EDGE].join('\n');
}

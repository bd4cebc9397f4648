import type { WordRow } from '../contracts/ndjson-rows.js';
import { centroid, verticalOverlap } from './geometry.js';
import { EDGE } from './visual-rows.js';

export interface WordWindow {
  /** Farthest first (reading order), padded with `<EDGE>` to two. */
  left: string[];
  /** Nearest first, padded with `<EDGE>` to two. */
  right: string[];
  /** `L2 L1 WORD R1 R2`. */
  input: string;
}

const NEARBY_DY = 0.05;
const NEARBY_DX = 0.25;

/**
 * Two-neighbour window each side (docs/adr/0010-embedding-inputs-and-metadata.md): neighbours on the same visual line
 * (vertical span overlap) ordered by centroid x, filled from nearby lines (|Δy| < 0.05, |Δx| < 0.25 on the right side,
 * by |Δy| then |Δx|) when short, padded with `<EDGE>`.
 */
export function wordWindows(words: WordRow[], size = 2): WordWindow[] {
  const centres = words.map((w) => centroid(w));
  return words.map((target, t) => {
    const c = centres[t]!;
    const same: number[] = [];
    for (let i = 0; i < words.length; i++) {
      if (i !== t && verticalOverlap(words[i]!.bounding_box, target.bounding_box)) same.push(i);
    }
    const order = (a: number, b: number) => centres[a]!.x - centres[b]!.x || a - b;
    const line = [...same, t].sort(order);
    const pos = line.indexOf(t);
    const leftNear = line.slice(0, pos).reverse().slice(0, size); // nearest first
    const rightNear = line.slice(pos + 1, pos + 1 + size);
    const taken = new Set([t, ...same]);
    const fill = (list: number[], side: -1 | 1) => {
      if (list.length >= size) return;
      const candidates: { i: number; dy: number; dx: number }[] = [];
      for (let i = 0; i < words.length; i++) {
        if (taken.has(i)) continue;
        const dxSigned = centres[i]!.x - c.x;
        const dy = Math.abs(centres[i]!.y - c.y);
        const dx = Math.abs(dxSigned);
        if (dy < NEARBY_DY && dx < NEARBY_DX && Math.sign(dxSigned) === side) candidates.push({ i, dy, dx });
      }
      candidates.sort((a, b) => a.dy - b.dy || a.dx - b.dx || a.i - b.i);
      for (const cand of candidates) {
        if (list.length >= size) break;
        list.push(cand.i);
        taken.add(cand.i);
      }
    };
    fill(leftNear, -1);
    fill(rightNear, 1);
    const text = (i: number) => words[i]!.text;
    const left = leftNear.map(text);
    const right = rightNear.map(text);
    while (left.length < size) left.push(EDGE);
    while (right.length < size) right.push(EDGE);
    left.reverse();
    return { left, right, input: [...left, target.text, ...right].join(' ') };
  });
}

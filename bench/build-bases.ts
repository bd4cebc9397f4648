import { baseSnapshot } from './compactor.js';

/**
 * Builds the cached bases of the 4× compactor bench ahead of a run (`npx tsx bench/build-bases.ts [parts [first]]`): the
 * 1× base (part 0) and parts 1..parts-1, each an ordinary Chroma directory of other receipts that the bench installs
 * as one sealed segment. Hours of indexing at ~300-600 vectors/s are paid once per machine.
 */
const parts = Number(process.argv[2] ?? 4);
const first = Number(process.argv[3] ?? 0);
for (let part = first; part < parts; part++) {
  for (const [c, n] of [
    ['lines', 12_800],
    ['words', 70_000],
  ] as const) {
    const t = performance.now();
    const dir = await baseSnapshot(c, n, part);
    console.error(`[bench] base ${c} part ${part}: ${dir} (${Math.round((performance.now() - t) / 1000)} s)`);
  }
}
// The 4× lines vectors in one directory: the query fan-out figure's baseline (same ids and vectors as parts 0..3).
if (parts > 1) await baseSnapshot('lines', 12_800 * parts, 0);

import type { ItemContext } from './context.js';
import type { PhaseTimer } from './phase-timer.js';
import type { ReadReceipt } from './read-receipt.js';

/** A receipt with the vectors of its inputs (same order as `items.lines` / `items.words`). */
export interface EmbeddedReceipt extends ReadReceipt {
  rowVectors: Float32Array[];
  /** Empty when the job left the words collection out. */
  wordVectors: Float32Array[];
  /** This item's own wait for its vectors (the log line of its write). */
  embedMs: number;
}

/**
 * Embeds at once: the embedder packs these inputs with those of every other receipt waiting now. The rows are
 * embedded even for a job without the lines collection: merchant resolution queries with them.
 */
export async function embedItem(
  ctx: ItemContext,
  read: ReadReceipt,
  timer: PhaseTimer,
): Promise<EmbeddedReceipt> {
  const { embedder, collections } = ctx;
  const { items } = read;
  const start = performance.now();
  const [rowVectors, wordVectors] = await timer.timed('embed', () =>
    Promise.all([
      embedder.embed(items.lines.map((i) => i.input)),
      collections.has('words') ? embedder.embed(items.words.map((i) => i.input)) : Promise.resolve([]),
    ]),
  );
  return { ...read, rowVectors, wordVectors, embedMs: performance.now() - start };
}

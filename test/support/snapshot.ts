// What a pipeline run must have produced, and what the live snapshot holds: shared by the local-mode and the
// real-node end-to-end tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { COLLECTIONS, type Collection } from '../../core/contracts/ids.js';
import { buildReceiptItems } from '../../core/receipt/embedding-inputs.js';
import type { GeneratedReceipt } from '../../core/sample/index.js';
import { openSegments } from '../../core/segments/open.js';
import { copyCurrentTo } from '../../core/snapshot/volume.js';

/** Vector ids the receipts must produce, from the same input builder the worker uses. */
export function expectedIds(receipts: GeneratedReceipt[]): Record<Collection, Set<string>> {
  const out = { lines: new Set<string>(), words: new Set<string>() };
  for (const r of receipts) {
    const items = buildReceiptItems({
      imageId: r.imageId,
      receiptId: r.receiptId,
      lines: r.lines,
      words: r.words,
    });
    items.lines.forEach((i) => out.lines.add(i.id));
    items.words.forEach((i) => out.words.add(i.id));
  }
  return out;
}

/** Every id in the live version of each collection under `volumeRoot`, read through real Chroma servers (one per segment) on a copy. */
export async function liveIds(
  volumeRoot: string,
): Promise<Record<Collection, { version: string; ids: Set<string>; count: number }>> {
  const scratch = mkdtempSync(join(tmpdir(), 'live-ids-'));
  const out = {} as Record<Collection, { version: string; ids: Set<string>; count: number }>;
  try {
    for (const c of COLLECTIONS) {
      const copy = await copyCurrentTo(volumeRoot, c, scratch);
      if (!copy) throw new Error(`no CURRENT for ${c}`);
      const segments = await openSegments(copy.dir);
      try {
        const { store } = segments;
        const got = await store.get(c, { include: [] });
        out[c] = { version: copy.version, ids: new Set(got.ids), count: await store.count(c) };
      } finally {
        await segments.close();
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return out;
}

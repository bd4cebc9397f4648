// WorkingCopy.presentIds: the publish validation and the merge's verify step ask Chroma which merged ids it holds
// without reading documents or metadata; it must answer exactly the stored subset, across request chunks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHROMA_CHUNK } from '../../../core/chroma/store.js';
import { WorkingCopy } from '../../../compactor/working-copy.js';

describe('WorkingCopy.presentIds', () => {
  it('returns exactly the stored ids among those asked, over more than one chunk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wc-present-'));
    const wc = new WorkingCopy('words', join(dir, 'work'));
    try {
      await wc.reset(undefined);
      const stored = Array.from({ length: CHROMA_CHUNK + 200 }, (_, i) => `IMAGE#img#RECEIPT#00001#W#${i}`);
      await wc.add(
        stored.map((id, i) => ({
          id,
          document: `w${i}`,
          metadata: { i },
          embedding: Float32Array.from([Math.cos(i), Math.sin(i), 1]),
        })),
      );
      // Every other stored id, and ids that were never stored, spread over both chunks.
      const asked = [...stored.filter((_, i) => i % 2 === 0), 'absent-1', 'absent-2'];
      const present = await wc.presentIds(asked);
      expect(present.size).toBe(asked.length - 2);
      expect(present.has('absent-1') || present.has('absent-2')).toBe(false);
      expect([...present].every((id) => stored.includes(id))).toBe(true);
      await wc.delete(stored.slice(0, 10));
      expect((await wc.presentIds(stored.slice(0, 20))).size).toBe(10);
    } finally {
      await wc.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

import { describe, expect, it } from 'vitest';
import {
  CompactionRunItem,
  newCompactionRun,
  runCollection,
  runCollections,
} from '../../../../core/contracts/compaction-run.js';
import { originalRunItem } from '../../../support/original-delta.js';

const IMAGE = '3f2a1b4c-0000-4000-8000-000000000001';
const sha = 'a'.repeat(64);
const lines = { key: 'lines/delta/r1/delta.arrow', sha256: sha, vectors: 3 };
const words = { key: 'words/delta/r1/delta.arrow', sha256: sha, vectors: 9 };

function run(deltas: Parameters<typeof newCompactionRun>[0]['deltas']) {
  return newCompactionRun({ runId: 'r1', imageId: IMAGE, receiptId: 2, deltas });
}

describe('CompactionRun: a run carries only the collections its job asked for', () => {
  it('a lines-only run has no words field at all, and runCollection says words is not part of it', () => {
    const item = run({ lines });
    expect(Object.keys(item).filter((k) => k.startsWith('words_'))).toEqual([]);
    expect(item).toMatchObject({
      lines_state: 'PENDING',
      lines_delta_key: lines.key,
      lines_sha256: sha,
      lines_vectors: 3,
    });
    expect(runCollections(item)).toEqual(['lines']);
    expect(runCollection(item, 'words')).toBeUndefined();
    expect(runCollection(item, 'lines')).toMatchObject({ state: 'PENDING', deltaKey: lines.key, vectors: 3 });
    // It survives a round trip through the schema (what every ledger read does).
    expect(CompactionRunItem.parse(JSON.parse(JSON.stringify(item)))).toEqual(item);
  });

  it('a words-only run likewise; a run of both carries both', () => {
    const w = run({ words });
    expect(runCollections(w)).toEqual(['words']);
    expect(runCollection(w, 'lines')).toBeUndefined();
    expect(Object.keys(w).filter((k) => k.startsWith('lines_'))).toEqual([]);
    const both = run({ lines, words });
    expect(runCollections(both)).toEqual(['lines', 'words']);
    expect(runCollection(both, 'words')).toMatchObject({ state: 'PENDING', vectors: 9 });
  });

  it('refuses a run that carries no collection', () => {
    expect(() => run({})).toThrow(/at least one collection/);
    const { lines_state, lines_delta_key, lines_sha256, lines_vectors, ...bare } = run({ lines });
    void [lines_state, lines_delta_key, lines_sha256, lines_vectors];
    const r = CompactionRunItem.safeParse(bare);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message).join('; ')).toMatch(/at least one collection/);
  });

  it('refuses a collection with only some of state, delta_key, sha256 and vectors, naming the missing field', () => {
    const item = run({ lines, words });
    for (const f of ['state', 'delta_key', 'sha256', 'vectors'] as const) {
      const partial: Record<string, unknown> = { ...item };
      delete partial[`words_${f}`];
      const r = CompactionRunItem.safeParse(partial);
      expect(r.success, f).toBe(false);
      expect(
        r.error?.issues.map((i) => i.path.join('.')),
        f,
      ).toEqual([`words_${f}`]);
    }
    // A state written onto a collection the run does not carry (an update for the wrong collection) is refused too.
    const stray = CompactionRunItem.safeParse({ ...run({ lines }), words_state: 'FAILED', words_error: 'x' });
    expect(stray.success).toBe(false);
    expect(stray.error?.issues.map((i) => i.path.join('.'))).toEqual([
      'words_delta_key',
      'words_sha256',
      'words_vectors',
    ]);
  });
});

describe("a CompactionRun written by the original system's workers (cut-over; seed-system §8.1)", () => {
  const original = originalRunItem({
    runId: '5d1f7a3e-2b4c-4e8f-9a1b-3c5d7e9f0a2b',
    imageId: IMAGE,
    receiptId: 2,
    linesPrefix: 'lines/delta/5d1f7a3e-2b4c-4e8f-9a1b-3c5d7e9f0a2b',
    wordsPrefix: 'words/delta/5d1f7a3e-2b4c-4e8f-9a1b-3c5d7e9f0a2b/',
  });

  it('parses with its NULLs, and each collection is a Chroma delta named by its prefix', () => {
    const item = CompactionRunItem.parse(original);
    expect(runCollections(item)).toEqual(['lines', 'words']);
    expect(runCollection(item, 'lines')).toEqual({
      state: 'PENDING',
      mergedVectors: 0,
      error: undefined,
      format: 'chroma',
      deltaPrefix: original.lines_delta_prefix,
    });
    expect(runCollection(item, 'words')).toMatchObject({
      format: 'chroma',
      deltaPrefix: original.words_delta_prefix,
    });
    expect(runCollection(run({ lines }), 'lines')).toMatchObject({ format: 'arrow', deltaKey: lines.key });
  });

  it('still needs a state per collection, and a prefix or the whole Arrow triple', () => {
    const noState = CompactionRunItem.safeParse({ ...original, words_state: undefined });
    expect(noState.error?.issues.map((i) => i.path.join('.'))).toEqual(['words_state']);
    const noDelta = CompactionRunItem.safeParse({ ...original, lines_delta_prefix: undefined });
    expect(noDelta.error?.issues.map((i) => i.path.join('.'))).toEqual([
      'lines_delta_key',
      'lines_sha256',
      'lines_vectors',
    ]);
  });
});

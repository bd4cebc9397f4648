// Issue 18 item 10: a delta whose hash matches (a hostile or broken writer, not transit corruption) but whose header
// declares a huge or negative dimension fails only its own run as DeltaCorrupt; nothing that size is allocated and
// the good run of the same batch merges.
import { Schema, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { compactorFor, makeReceipt, makeWorld, pumpStream, writeRun } from './fixtures.js';

const env = inject('testEnv');

/** The same delta with its schema metadata `dimensions` replaced. */
const declareDims = (dims: string) => (b: Buffer) => {
  const t = tableFromIPC(b);
  const meta = new Map(t.schema.metadata);
  meta.set('dimensions', dims);
  const schema = new Schema(t.schema.fields, meta);
  return Buffer.from(
    tableToIPC(
      new Table(
        schema,
        t.batches.map((x) => x),
      ),
      'file',
    ),
  );
};

describe('deltas from a hostile writer', () => {
  it('declared dimensions 3e9 and -1 FAIL their run as DeltaCorrupt; the good run merges', async () => {
    const w = await makeWorld(env, 'hostile');
    const good = makeReceipt(20);
    const huge = makeReceipt(21);
    const negative = makeReceipt(22);
    const runs = {
      good: await writeRun(w, good),
      huge: await writeRun(w, huge, { tamper: { lines: declareDims('3000000000') }, rehash: true }),
      negative: await writeRun(w, negative, { tamper: { words: declareDims('-1') }, rehash: true }),
    };
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    const state = async (name: keyof typeof runs, c: 'lines' | 'words') => {
      const r = runs[name];
      return runCollection((await w.ledger.getRun(r.image_id, r.receipt_id, r.run_id))!, c);
    };
    expect(await state('good', 'lines')).toMatchObject({ state: 'COMPLETED' });
    expect(await state('good', 'words')).toMatchObject({ state: 'COMPLETED' });
    expect(await state('huge', 'lines')).toMatchObject({
      state: 'FAILED',
      error: expect.stringMatching(
        /DeltaCorrupt: delta declares dimensions "3000000000", not an integer in \[1, 16384\]/,
      ),
    });
    expect(await state('negative', 'words')).toMatchObject({
      state: 'FAILED',
      error: expect.stringMatching(/DeltaCorrupt: delta declares dimensions "-1"/),
    });
    expect(await state('huge', 'words')).toMatchObject({ state: 'COMPLETED' }); // its other delta was fine
  });
});

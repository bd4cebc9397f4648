// Place, label and section changes and deletions (docs/adr/0010-embedding-inputs-and-metadata.md), recomputed from the
// ledger, including the cases the original got wrong: a place inserted after the embed (docs/adr/0008), a place written
// before the delta was merged, a label REMOVE + a different label INSERT on the same word in one batch (ibid.), and
// REMOVEs ordered first.
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import {
  compactorFor,
  dumpLive,
  makeReceipt,
  makeWorld,
  pumpStream,
  writeRun,
  type World,
} from './fixtures.js';

const env = inject('testEnv');
const pad = (n: number) => String(n).padStart(5, '0');

async function cycle(w: World): Promise<void> {
  await pumpStream(w);
  await compactorFor(w, 'c1').run(new AbortController().signal);
}

describe('metadata updates and deletions', () => {
  it('applies places, labels, sections and deletes as the ledger says, in any arrival order', async () => {
    const w = await makeWorld(env, 'meta');
    const a = makeReceipt(40, { lines: 3, words: 2 });
    const pk = `IMAGE#${a.imageId}`;
    const r = `RECEIPT#${pad(a.receiptId)}`;
    // Line/word rows exist in the ledger (so they can be removed later).
    for (const l of [0, 1, 2]) {
      await w.ledger.putItem({ PK: pk, SK: `${r}#LINE#${pad(l)}`, text: `l${l}` });
      for (const wd of [0, 1])
        await w.ledger.putItem({ PK: pk, SK: `${r}#LINE#${pad(l)}#WORD#${pad(wd)}`, text: 'w' });
    }
    await writeRun(w, a);
    await cycle(w);

    // 1. A place created after the embed reaches both collections (the original emitted nothing for INSERTs).
    await w.ledger.putItem({
      PK: pk,
      SK: `${r}#PLACE`,
      merchant_name: 'Sprouts Farmers Market',
      formatted_address: '123 Main St, Springfield, IL',
      phone_number: '2175550100',
      place_id: 'ChIJ123',
      merchant_category: 'grocery_store',
    });
    // 2. Labels: word (0,0) GRAND_TOTAL VALID, word (0,1) TAX PENDING.
    const label = (l: number, wd: number, name: string) =>
      `${r}#LINE#${pad(l)}#WORD#${pad(wd)}#LABEL#${name}`;
    await w.ledger.putItem({
      PK: pk,
      SK: label(0, 0, 'GRAND_TOTAL'),
      label: 'GRAND_TOTAL',
      validation_status: 'VALID',
    });
    await w.ledger.putItem({ PK: pk, SK: label(0, 1, 'TAX'), label: 'TAX', validation_status: 'PENDING' });
    // 3. A section covering lines 1 and 2.
    await w.ledger.putItem({
      PK: pk,
      SK: `${r}#SECTION#ITEMS`,
      section_type: 'ITEMS',
      line_ids: [1, 2],
      confidence: 0.9,
    });
    await cycle(w);

    let lines = await dumpLive(w.root, 'lines', w.dir);
    let words = await dumpLive(w.root, 'words', w.dir);
    for (const rec of [...lines.records.values(), ...words.records.values()]) {
      expect(rec.metadata).toMatchObject({
        merchant_name: 'Sprouts Farmers Market',
        address: '123 Main St, Springfield, IL',
        phone_number: '2175550100',
        place_id: 'ChIJ123',
        merchant_category: 'grocery_store',
      });
    }
    const wid = (l: number, wd: number) => `${pk}#${r}#LINE#${pad(l)}#WORD#${pad(wd)}`;
    const lid = (l: number) => `${pk}#${r}#LINE#${pad(l)}`;
    expect(words.records.get(wid(0, 0))!.metadata).toMatchObject({
      valid_labels: 'GRAND_TOTAL',
      label_status: 'validated',
    });
    expect(words.records.get(wid(0, 1))!.metadata).toMatchObject({ label_status: 'auto_suggested' });
    expect(words.records.get(wid(0, 1))!.metadata.valid_labels).toBeUndefined();
    expect(lines.records.get(lid(0))!.metadata).toMatchObject({
      label_GRAND_TOTAL: true,
      label_status: 'validated',
    });
    expect(lines.records.get(lid(1))!.metadata).toMatchObject({ section_label: 'ITEMS' });
    expect(lines.records.get(lid(0))!.metadata.section_label).toBeUndefined();
    // Untouched worker fields survive.
    expect(lines.records.get(lid(0))!.metadata).toMatchObject({ text: 'line 40-0', line_id: 0 });

    // 4. Same batch: REMOVE GRAND_TOTAL and INSERT DISCOUNT on the same word (the original's word-level de-dup
    //    dropped the INSERT); mark the TAX label INVALID; remove the place; delete a word and a line.
    await w.ledger.deleteItem({ PK: pk, SK: label(0, 0, 'GRAND_TOTAL') });
    await w.ledger.putItem({
      PK: pk,
      SK: label(0, 0, 'DISCOUNT'),
      label: 'DISCOUNT',
      validation_status: 'VALID',
    });
    await w.ledger.putItem({ PK: pk, SK: label(0, 1, 'TAX'), label: 'TAX', validation_status: 'INVALID' });
    await w.ledger.deleteItem({ PK: pk, SK: `${r}#PLACE` });
    await w.ledger.deleteItem({ PK: pk, SK: `${r}#LINE#${pad(2)}#WORD#${pad(1)}` });
    await w.ledger.deleteItem({ PK: pk, SK: `${r}#LINE#${pad(2)}` });
    // A line removed and re-created before the compactor sees it stays (the ledger has it again).
    await w.ledger.deleteItem({ PK: pk, SK: `${r}#LINE#${pad(1)}` });
    await w.ledger.putItem({ PK: pk, SK: `${r}#LINE#${pad(1)}`, text: 'back' });
    await cycle(w);

    lines = await dumpLive(w.root, 'lines', w.dir);
    words = await dumpLive(w.root, 'words', w.dir);
    expect(words.records.get(wid(0, 0))!.metadata).toMatchObject({
      valid_labels: 'DISCOUNT',
      label_status: 'validated',
    });
    expect(words.records.get(wid(0, 1))!.metadata).toMatchObject({
      invalid_labels: 'TAX',
      label_status: 'invalidated',
    });
    expect(lines.records.get(lid(0))!.metadata).toMatchObject({ label_DISCOUNT: true, label_TAX: false });
    expect(lines.records.get(lid(0))!.metadata.label_GRAND_TOTAL).toBeUndefined();
    for (const rec of [...lines.records.values(), ...words.records.values()]) {
      for (const k of ['merchant_name', 'address', 'phone_number', 'place_id', 'merchant_category'])
        expect(rec.metadata[k]).toBeUndefined();
    }
    expect(words.records.has(wid(2, 1))).toBe(false);
    expect(words.records.has(wid(2, 0))).toBe(true);
    expect(lines.records.has(lid(2))).toBe(false);
    expect(lines.records.has(lid(1))).toBe(true);
    // Embeddings and documents of re-written vectors are untouched.
    expect(lines.records.get(lid(0))!.document).toBe('line 40-0');

    // 5. Removing the receipt removes every vector of it from both collections.
    await w.ledger.putItem({ PK: pk, SK: r, total: 1 });
    await w.ledger.deleteItem({ PK: pk, SK: r });
    await cycle(w);
    expect((await dumpLive(w.root, 'lines', w.dir)).records.size).toBe(0);
    expect((await dumpLive(w.root, 'words', w.dir)).records.size).toBe(0);
  });

  it('a place written before the delta is merged is applied at merge time (the original found nothing to update)', async () => {
    const w = await makeWorld(env, 'early-place');
    const b = makeReceipt(41);
    const pk = `IMAGE#${b.imageId}`;
    await w.ledger.putItem({
      PK: pk,
      SK: `RECEIPT#${pad(b.receiptId)}#PLACE`,
      merchant_name: 'Trader Joes',
      place_id: 'P1',
    });
    await writeRun(w, b);
    await cycle(w);
    const lines = await dumpLive(w.root, 'lines', w.dir);
    const words = await dumpLive(w.root, 'words', w.dir);
    expect(lines.records.size).toBe(3);
    for (const rec of [...lines.records.values(), ...words.records.values()]) {
      expect(rec.metadata).toMatchObject({ merchant_name: 'Trader Joes', place_id: 'P1' });
    }
  });
});

import { describe, expect, it } from 'vitest';
import { lineVectorId, wordVectorId } from '../../../core/contracts/ids.js';
import { desiredMetadata, rowLineIds, sameMetadata, type ReceiptFacts } from '../../../compactor/enrich.js';

const IMG = '3f2a1b4c-0000-4000-8000-000000000001';
const facts = (over: Partial<ReceiptFacts> = {}): ReceiptFacts => ({
  imageId: IMG,
  receiptId: 1,
  placeRemoved: false,
  labels: new Map(),
  sections: [],
  ...over,
});

describe('ledger-derived metadata (docs/adr/0010)', () => {
  it('place fields come from the place row; formatted_address becomes address; worker keys survive', () => {
    const m = desiredMetadata(
      'words',
      wordVectorId(IMG, 1, 2, 3),
      { text: 'TOTAL', merchant_name: 'guess' },
      facts({
        place: { PK: 'p', SK: 's', merchant_name: 'Sprouts', formatted_address: '1 Main St', place_id: 'P' },
      }),
    );
    expect(m).toMatchObject({
      text: 'TOTAL',
      merchant_name: 'Sprouts',
      address: '1 Main St',
      place_id: 'P',
      phone_number: null,
    });
  });

  it('a removed place nulls the place keys; no place row and no removal leaves the worker merchant', () => {
    expect(
      desiredMetadata('lines', lineVectorId(IMG, 1, 0), { merchant_name: 'X' }, facts({ placeRemoved: true }))
        .merchant_name,
    ).toBeNull();
    expect(
      desiredMetadata('lines', lineVectorId(IMG, 1, 0), { merchant_name: 'X' }, facts()).merchant_name,
    ).toBe('X');
  });

  it('word labels: VALID wins over INVALID for the same label; status from the statuses', () => {
    const labels = new Map([
      [
        '2:3',
        [
          { label: 'TAX', status: 'VALID' },
          { label: 'TAX', status: 'INVALID' },
          { label: 'TOTAL', status: 'INVALID' },
        ],
      ],
    ]);
    const m = desiredMetadata('words', wordVectorId(IMG, 1, 2, 3), {}, facts({ labels }));
    expect(m).toMatchObject({ valid_labels: 'TAX', invalid_labels: 'TOTAL', label_status: 'validated' });
    const none = desiredMetadata(
      'words',
      wordVectorId(IMG, 1, 2, 4),
      { valid_labels: 'OLD' },
      facts({ labels }),
    );
    expect(none).toMatchObject({ valid_labels: null, invalid_labels: null, label_status: null });
  });

  it('row labels cover every line of a visual row; stale label_ keys are removed', () => {
    const labels = new Map([
      ['4:0', [{ label: 'GRAND_TOTAL', status: 'VALID' }]],
      ['5:1', [{ label: 'TAX', status: 'INVALID' }]],
    ]);
    const m = desiredMetadata(
      'lines',
      lineVectorId(IMG, 1, 4),
      { row_line_ids: '[4, 5]', label_OLD: true },
      facts({ labels }),
    );
    expect(m).toMatchObject({
      label_GRAND_TOTAL: true,
      label_TAX: false,
      label_OLD: null,
      label_status: 'validated',
    });
    expect(rowLineIds(lineVectorId(IMG, 1, 7), {})).toEqual([7]);
  });

  it('section label: plurality of the row lines, INVALID ignored, the more confident section claims a line, ties unset', () => {
    const sections = [
      { type: 'ITEMS', lineIds: [1, 2], confidence: 0.9 },
      { type: 'TOTALS', lineIds: [2, 3], confidence: 0.95 },
      { type: 'HEADER', lineIds: [1, 2, 3], confidence: 1, status: 'INVALID' },
    ];
    const row = (ids: number[]) =>
      desiredMetadata(
        'lines',
        lineVectorId(IMG, 1, ids[0]!),
        { row_line_ids: JSON.stringify(ids) },
        facts({ sections }),
      ).section_label;
    expect(row([1])).toBe('ITEMS');
    expect(row([2, 3])).toBe('TOTALS'); // line 2 goes to TOTALS (0.95 > 0.9)
    expect(row([1, 2])).toBeNull(); // one ITEMS, one TOTALS: tie
    expect(row([9])).toBeNull();
  });

  it('metadata comparison ignores key order and absent-vs-null', () => {
    expect(sameMetadata({ a: 1, b: null }, { a: 1 })).toBe(true);
    expect(sameMetadata({ a: 1, b: 'x' }, { b: 'x', a: 1 })).toBe(true);
    expect(sameMetadata({ a: 1 }, { a: 2 })).toBe(false);
  });
});

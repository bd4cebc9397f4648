import { describe, expect, it } from 'vitest';
import type { LineRow, WordRow } from '../../../../core/contracts/ndjson-rows.js';
import { LineRow as LineSchema, WordRow as WordSchema } from '../../../../core/contracts/ndjson-rows.js';
import { applyMerchant, buildReceiptItems } from '../../../../core/receipt/embedding-inputs.js';
import { summarizeLabels } from '../../../../core/receipt/labels.js';
import { rowInput, visualRows } from '../../../../core/receipt/visual-rows.js';
import { wordWindows } from '../../../../core/receipt/word-windows.js';
import { generateReceipt } from '../../../../core/sample/index.js';

const IMAGE = '3f2b9a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

function box(x: number, y: number, width: number, height: number) {
  return {
    bounding_box: { x, y, width, height },
    top_left: { x, y: y + height },
    top_right: { x: x + width, y: y + height },
    bottom_left: { x, y },
    bottom_right: { x: x + width, y },
    angle_degrees: 0,
    angle_radians: 0,
  };
}
function line(
  id: number,
  text: string,
  x: number,
  y: number,
  w = 0.2,
  h = 0.02,
  extra: Partial<LineRow> = {},
): LineRow {
  return LineSchema.parse({
    receipt_id: 1,
    image_id: IMAGE,
    line_id: id,
    text,
    ...box(x, y, w, h),
    confidence: 0.9,
    ...extra,
  });
}
function word(
  lineId: number,
  wordId: number,
  text: string,
  x: number,
  y: number,
  w = 0.08,
  h = 0.02,
  extra: Partial<WordRow> = {},
): WordRow {
  return WordSchema.parse({
    receipt_id: 1,
    image_id: IMAGE,
    line_id: lineId,
    word_id: wordId,
    text,
    ...box(x, y, w, h),
    confidence: 0.9,
    ...extra,
  });
}

describe('visual rows', () => {
  it('groups split lines into one row (transitively), left to right, top row first (y = 0 is the bottom)', () => {
    const rows = visualRows([
      line(4, 'TOTAL', 0.05, 0.1),
      line(1, 'STORE', 0.4, 0.9),
      line(3, '4.99', 0.8, 0.503),
      line(2, 'MILK', 0.05, 0.5),
      line(5, '2 @ 2.50', 0.4, 0.512), // overlaps MILK's band only through 4.99's: transitive
    ]);
    expect(rows.map((r) => r.text)).toEqual(['STORE', 'MILK 2 @ 2.50 4.99', 'TOTAL']);
    expect(rows[1]!.primary.line_id).toBe(2);
    expect(rows[1]!.box.x).toBeCloseTo(0.05);
    expect(rows[1]!.box.width).toBeCloseTo(0.95);
    expect(rowInput(rows, 0)).toBe('<EDGE>\nSTORE\nMILK 2 @ 2.50 4.99');
    expect(rowInput(rows, 2)).toBe('MILK 2 @ 2.50 4.99\nTOTAL\n<EDGE>');
  });
});

describe('word windows', () => {
  it('takes two same-line neighbours each side, farthest first on the left, padded with <EDGE>', () => {
    const ws = [
      word(1, 1, 'A', 0.05, 0.5),
      word(1, 2, 'B', 0.15, 0.5),
      word(1, 3, 'C', 0.25, 0.5),
      word(1, 4, 'D', 0.35, 0.5),
      word(1, 5, 'E', 0.45, 0.5),
    ];
    const win = wordWindows(ws);
    expect(win[0]!.input).toBe('<EDGE> <EDGE> A B C');
    expect(win[2]!.input).toBe('A B C D E');
    expect(win[4]!.input).toBe('C D E <EDGE> <EDGE>');
  });

  it('fills a short side from nearby lines (|dy| < 0.05, |dx| < 0.25), nearest line first', () => {
    const ws = [
      word(1, 1, 'Total', 0.3, 0.5),
      word(2, 1, 'Tax', 0.45, 0.46), // below, to the right, within reach
      word(3, 1, 'Discount', 0.5, 0.54), // above, to the right
      word(4, 1, 'Far', 0.9, 0.47, 0.05, 0.005), // too far right and not overlapping (thin, below)
    ];
    expect(wordWindows(ws)[0]!.input).toBe('<EDGE> <EDGE> Total Tax Discount');
  });
});

describe('labels', () => {
  it('word: VALID wins over INVALID; row: the last status seen decides', () => {
    const l = (label: string, validation_status: string, timestamp_added: string) => ({
      line_id: 1,
      word_id: 1,
      label,
      validation_status,
      timestamp_added,
    });
    const labels = [
      l('TOTAL', 'VALID', '1'),
      l('GRAND_TOTAL', 'VALID', '2'),
      l('GRAND_TOTAL', 'INVALID', '3'),
      l('TAX', 'PENDING', '4'),
    ];
    expect(summarizeLabels(labels)).toMatchObject({
      label_status: 'validated',
      valid: ['GRAND_TOTAL'],
      invalid: [],
    });
    expect(summarizeLabels(labels, true)).toMatchObject({
      valid: [],
      invalid: ['GRAND_TOTAL'],
      label_status: 'auto_suggested',
    });
    expect(summarizeLabels([]).label_status).toBe('unvalidated');
  });
});

describe('receipt items', () => {
  const r = generateReceipt(42, { merchant: 0, branch: 0, items: 4, url: true });
  const items = buildReceiptItems({
    imageId: r.imageId,
    receiptId: r.receiptId,
    lines: r.lines,
    words: r.words,
  });

  it('one vector per visual row, id of the leftmost line, noise skipped, anchors from the row words', () => {
    const noise = r.lines.filter((l) => l.is_noise).map((l) => l.line_id);
    expect(noise.length).toBeGreaterThan(0);
    expect(items.lines.length).toBe(items.rows.length);
    const phoneRow = items.lines.find((i) => i.document.startsWith('TEL'))!;
    expect(phoneRow.metadata).toMatchObject({
      normalized_phone_10: '6195550134',
      receipt_id: r.receiptId,
      image_id: r.imageId,
      source: 'openai_embedding_batch',
      label_status: 'unvalidated',
    });
    const itemRow = items.lines.find((i) => JSON.parse(i.metadata.row_line_ids as string).length > 1)!;
    expect(itemRow.id).toBe(
      `IMAGE#${r.imageId}#RECEIPT#0000${r.receiptId}#LINE#${String(itemRow.metadata.line_id).padStart(5, '0')}`,
    );
    for (const it of items.lines) {
      expect(noise).not.toContain(it.metadata.line_id);
      expect(it.input.split('\n')).toHaveLength(3);
      expect(it.metadata).not.toHaveProperty('merchant_name');
    }
    expect(items.lines[0]!.input.startsWith('<EDGE>\n')).toBe(true);
  });

  it('word vectors carry geometry, neighbours and their own anchors; merchant added afterwards', () => {
    expect(items.words.length).toBe(r.words.filter((w) => !w.is_noise).length);
    const phoneWord = items.words.find((w) => w.document === '555-0134')!;
    expect(phoneWord.metadata).toMatchObject({
      normalized_phone_10: '6195550134',
      left: '(619)',
      right: expect.any(String),
    });
    expect(phoneWord.input.split(' ')).toHaveLength(5);
    applyMerchant(items, 'SPROUTS FARMERS MARKET');
    expect(items.lines[0]!.metadata.merchant_name).toBe('Sprouts Farmers Market');
    expect(phoneWord.metadata.merchant_name).toBe('Sprouts Farmers Market');
    applyMerchant(items, undefined);
    expect(items.lines[0]!.metadata).not.toHaveProperty('merchant_name');
    expect(phoneWord.metadata.merchant_name).toBe('');
  });
});

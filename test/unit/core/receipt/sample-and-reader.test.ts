import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineRow, WordRow } from '../../../../core/contracts/ndjson-rows.js';
import { InputError } from '../../../../core/errors.js';
import { readLines, readWords } from '../../../../core/receipt/ndjson-reader.js';
import { DEFECTS, generateReceipt, generateReceipts, MERCHANTS } from '../../../../core/sample/index.js';

const stream = (s: string) => Readable.from([Buffer.from(s)]);

describe('synthetic receipts', () => {
  it('are deterministic per seed and valid against the row schemas, y = 0 at the bottom', () => {
    const a = generateReceipt(1);
    expect(generateReceipt(1).linesNdjson).toBe(a.linesNdjson);
    expect(generateReceipt(2).linesNdjson).not.toBe(a.linesNdjson);
    for (const l of a.linesNdjson.split('\n')) expect(LineRow.safeParse(JSON.parse(l)).success).toBe(true);
    for (const w of a.wordsNdjson.split('\n')) expect(WordRow.safeParse(JSON.parse(w)).success).toBe(true);
    expect(a.linesNdjson.endsWith('\n')).toBe(false);
    // Field order as the original exporter (dataclass order).
    expect(Object.keys(JSON.parse(a.wordsNdjson.split('\n')[0]!))).toEqual([
      'receipt_id',
      'image_id',
      'line_id',
      'word_id',
      'text',
      'bounding_box',
      'top_left',
      'top_right',
      'bottom_left',
      'bottom_right',
      'angle_degrees',
      'angle_radians',
      'confidence',
      'extracted_data',
      'embedding_status',
      'is_noise',
    ]);
    const first = a.lines[0]!;
    const last = a.lines.at(-1)!;
    expect(first.bounding_box.y).toBeGreaterThan(last.bounding_box.y);
  });

  it('cover every merchant, with phone/address/url anchors and split rows', () => {
    const rs = generateReceipts(MERCHANTS.length * 2, 9);
    expect(new Set(rs.map((r) => r.merchant.name)).size).toBe(MERCHANTS.length);
    expect(new Set(rs.map((r) => r.imageId)).size).toBe(rs.length);
    const types = new Set(rs.flatMap((r) => r.words.map((w) => w.extracted_data?.type)).filter(Boolean));
    expect([...types].sort()).toEqual(['address', 'date', 'phone', 'url']);
  });
});

describe('NDJSON reader', () => {
  it('reads a good receipt', async () => {
    const r = generateReceipt(3);
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const lines = await readLines(stream(r.linesNdjson), ids);
    const words = await readWords(stream(r.wordsNdjson + '\n'), ids, new Set(lines.map((l) => l.line_id)));
    expect(lines).toEqual(r.lines);
    expect(words).toEqual(r.words);
  });

  it.each(DEFECTS)('reports %s naming the file, row and field', async (defect) => {
    const r = generateReceipt(11, { defect });
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const run = async () => {
      const lines = await readLines(stream(r.linesNdjson), ids);
      await readWords(stream(r.wordsNdjson), ids, new Set(lines.map((l) => l.line_id)));
    };
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    const e = err as InputError;
    expect(e.where.file).toBe(r.defect!.file);
    expect(e.where.row).toBe(r.defect!.row);
    if (r.defect!.field) expect(e.where.field).toBe(r.defect!.field);
    expect(e.message.startsWith(r.defect!.file)).toBe(true);
    expect(e.reason).toBe('BadInput');
  });
});

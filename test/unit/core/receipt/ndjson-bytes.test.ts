// Bytes the NDJSON reader must not paper over (issue 12, item 6): bytes that are not UTF-8 are rejected with file, row
// and field (never replaced by U+FFFD), the row size limit is stated, a BOM is shown as U+FEFF.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../../core/errors.js';
import { decodeNdjson, MAX_ROW_BYTES, readLines, readWords } from '../../../../core/receipt/ndjson-reader.js';
import { generateReceipt } from '../../../../core/sample/index.js';

/** A stream that delivers `bytes` in chunks of `size`, so rows and multi-byte characters straddle chunks. */
const chunked = (bytes: Buffer, size = 7) =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
      bytes.subarray(i * size, (i + 1) * size),
    ),
  );

/** words.ndjson of a receipt with `bad` in place of the text of row `row` (1-based). */
function wordsWith(row: number, bad: Buffer): { bytes: Buffer; r: ReturnType<typeof generateReceipt> } {
  const r = generateReceipt(21);
  const rows = r.wordsNdjson.split('\n');
  const [before, after] = JSON.stringify({ ...JSON.parse(rows[row - 1]!), text: 'O@@ks' }).split('@@') as [
    string,
    string,
  ];
  const bytes = Buffer.concat([
    Buffer.from(rows.slice(0, row - 1).join('\n') + '\n' + before),
    bad,
    Buffer.from(after + '\n' + rows.slice(row).join('\n')),
  ]);
  return { bytes, r };
}

async function failure(p: Promise<unknown>): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

describe('NDJSON bytes', () => {
  it.each([
    ['latin-1 ÿþ', Buffer.from([0xff, 0xfe]), '0xFF'],
    ['a lone continuation byte', Buffer.from([0x80]), '0x80'],
    ['a truncated sequence', Buffer.from([0xe2, 0x82]), '0xE2'],
    ['an encoded surrogate', Buffer.from([0xed, 0xa0, 0x80]), '0xED'],
  ])('rejects %s with file, row and field instead of replacing it', async (_, bad, shown) => {
    const { bytes, r } = wordsWith(3, bad);
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const e = await failure(readWords(chunked(bytes), ids));
    expect(e.where).toEqual({ file: 'words.ndjson', row: 3, field: 'text' });
    expect(e.message).toMatch(/^words\.ndjson, row 3, field text: not valid UTF-8/);
    expect(e.message).toContain(shown);
    expect(e.reason).toBe('BadInput');
    // The same check on a whole file (a folder read by `local run --input` / `submit`).
    expect(() => decodeNdjson(bytes, 'r/words.ndjson')).toThrow(
      /^r\/words\.ndjson, row 3, field text: not valid UTF-8/,
    );
  });

  it('accepts every valid UTF-8 character, split across chunks anywhere', async () => {
    const { bytes, r } = wordsWith(2, Buffer.from('€ü😀\ufffd'));
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    for (const size of [1, 2, 3, 5, 64]) {
      const words = await readWords(chunked(bytes, size), ids);
      expect(words[1]!.text).toBe('O€ü😀\ufffdks');
    }
    expect(decodeNdjson(bytes, 'words.ndjson')).toBe(bytes.toString('utf8'));
  });

  it('says the size limit when a row is too long, without reading the rest of the row', async () => {
    const r = generateReceipt(22);
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const huge = Buffer.concat([
      Buffer.from(r.linesNdjson.split('\n')[0] + '\n'),
      Buffer.alloc(MAX_ROW_BYTES + 10, 'x'),
    ]);
    const e = await failure(readLines(chunked(huge, 65536), ids));
    expect(e.where).toEqual({ file: 'lines.ndjson', row: 2 });
    expect(e.message).toMatch(/row 2: row is longer than the limit of 1,000,000 bytes \(1 MB\)/);
  });

  it('shows a byte order mark as U+FEFF', async () => {
    const r = generateReceipt(23);
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const bytes = Buffer.from(`\ufeff${r.linesNdjson}`);
    const e = await failure(readLines(chunked(bytes), ids));
    expect(e.where).toEqual({ file: 'lines.ndjson', row: 1 });
    expect(e.message).toContain('U+FEFF');
    expect(e.message).not.toContain('\ufeff');
    expect(() => decodeNdjson(bytes, 'lines.ndjson')).toThrow(/row 1: .*U\+FEFF/);
    // Anywhere else an invisible character in a malformed row is spelled out too.
    const mid = Buffer.from(`${r.linesNdjson.split('\n')[0]}\n\u200b{"x":1}\n`);
    const e2 = await failure(readLines(chunked(mid), ids));
    expect(e2.message).toMatch(/row 2: malformed JSON .*U\+200B/);
    expect(e2.message).not.toContain('\u200b');
  });

  it('still reads CRLF files and skips blank rows', async () => {
    const r = generateReceipt(24);
    const ids = { imageId: r.imageId, receiptId: r.receiptId };
    const crlf = Buffer.from(`\r\n${r.linesNdjson.split('\n').join('\r\n')}\r\n\r\n`);
    expect(await readLines(chunked(crlf, 13), ids)).toEqual(r.lines);
  });
});

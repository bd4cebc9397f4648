import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { LineRow, WordRow } from '../contracts/ndjson-rows.js';
import { parseOrThrow } from '../contracts/validation.js';
import { InputError } from '../errors.js';

/** Longest accepted NDJSON line (a row is < 2 KB; anything this big is not a receipt row). */
export const MAX_ROW_CHARS = 1_000_000;

/**
 * Streams an NDJSON body row by row (1-based row numbers; blank lines are skipped), without holding the file in
 * memory. Malformed JSON throws an InputError naming the file and row.
 */
export async function* readNdjson(
  stream: Readable,
  file: string,
): AsyncGenerator<{ row: number; value: unknown }> {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let row = 0;
  try {
    for await (const text of rl) {
      row++;
      if (text.trim() === '') continue;
      if (text.length > MAX_ROW_CHARS)
        throw new InputError(`row is ${text.length} characters long`, { file, row });
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new InputError(`malformed JSON (${(err as Error).message})`, { file, row });
      }
      yield { row, value };
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

export interface ExpectedIds {
  imageId: string;
  receiptId: number;
}

function checkIds(
  r: { image_id: string; receipt_id: number },
  expected: ExpectedIds,
  file: string,
  row: number,
): void {
  if (r.image_id.toLowerCase() !== expected.imageId.toLowerCase()) {
    throw new InputError(`image_id ${r.image_id} does not match the job's ${expected.imageId}`, {
      file,
      row,
      field: 'image_id',
    });
  }
  if (r.receipt_id !== expected.receiptId) {
    throw new InputError(`receipt_id ${r.receipt_id} does not match the job's ${expected.receiptId}`, {
      file,
      row,
      field: 'receipt_id',
    });
  }
}

/** Reads and validates lines.ndjson: full row schema, ids of the job, unique line ids, not empty. */
export async function readLines(
  stream: Readable,
  expected: ExpectedIds,
  file = 'lines.ndjson',
): Promise<LineRow[]> {
  const out: LineRow[] = [];
  const seen = new Map<number, number>();
  for await (const { row, value } of readNdjson(stream, file)) {
    const line = parseOrThrow(LineRow, value, { file, row });
    checkIds(line, expected, file, row);
    const first = seen.get(line.line_id);
    if (first !== undefined)
      throw new InputError(`duplicate line_id ${line.line_id} (first at row ${first})`, {
        file,
        row,
        field: 'line_id',
      });
    seen.set(line.line_id, row);
    out.push(line);
  }
  if (out.length === 0) throw new InputError('file is empty', { file });
  return out;
}

/**
 * Reads and validates words.ndjson: full row schema, ids of the job, unique (line_id, word_id), every word on a known
 * line (when `lineIds` is given), not empty.
 */
export async function readWords(
  stream: Readable,
  expected: ExpectedIds,
  lineIds?: ReadonlySet<number>,
  file = 'words.ndjson',
): Promise<WordRow[]> {
  const out: WordRow[] = [];
  const seen = new Map<string, number>();
  for await (const { row, value } of readNdjson(stream, file)) {
    const word = parseOrThrow(WordRow, value, { file, row });
    checkIds(word, expected, file, row);
    const key = `${word.line_id}:${word.word_id}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw new InputError(
        `duplicate word (line_id ${word.line_id}, word_id ${word.word_id}; first at row ${first})`,
        {
          file,
          row,
          field: 'word_id',
        },
      );
    }
    seen.set(key, row);
    if (lineIds && !lineIds.has(word.line_id)) {
      throw new InputError(`line_id ${word.line_id} is not in lines.ndjson`, { file, row, field: 'line_id' });
    }
    out.push(word);
  }
  if (out.length === 0) throw new InputError('file is empty', { file });
  return out;
}

import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { LineRow, WordRow } from '../contracts/ndjson-rows.js';
import { parseOrThrow } from '../contracts/validation.js';
import { InputError } from '../errors.js';

/** Longest accepted NDJSON row, in bytes (a receipt row is < 2 KB; anything this big is not a receipt row). */
export const MAX_ROW_BYTES = 1_000_000;
/** Largest accepted NDJSON file (a receipt's words.ndjson is tens of KB). Checked from the object size, then counted. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Most rows accepted in one file (a receipt has hundreds of words); every row is kept in memory. */
export const MAX_ROWS = 100_000;

export interface NdjsonLimits {
  maxBytes: number;
  maxRows: number;
}
const DEFAULT_LIMITS: NdjsonLimits = { maxBytes: MAX_FILE_BYTES, maxRows: MAX_ROWS };

const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Streams an NDJSON body row by row (1-based row numbers; blank lines are skipped; CRLF is accepted), without holding
 * the file in memory. Rows are split on bytes and decoded strictly: bytes that are not UTF-8 are rejected with the
 * file, row and field (never replaced by U+FFFD), a row longer than MAX_ROW_BYTES is rejected as soon as it passes
 * the limit, and malformed JSON names its file and row, with invisible characters such as a BOM spelled `U+FEFF`.
 */
export async function* readNdjson(
  stream: Readable,
  file: string,
  limits: NdjsonLimits = DEFAULT_LIMITS,
): AsyncGenerator<{ row: number; value: unknown }> {
  let row = 0;
  let total = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const parse = (bytes: Buffer) => parseRow(bytes, file, row);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      // The object size is checked before download (ObjectStore maxBytes); this holds for any stream.
      total += buf.length;
      if (total > limits.maxBytes)
        throw new InputError(
          `file is larger than the limit of ${limits.maxBytes.toLocaleString('en-US')} bytes`,
          {
            file,
            row: row + 1,
          },
        );
      let start = 0;
      for (let nl = buf.indexOf(LF, start); nl >= 0; nl = buf.indexOf(LF, start)) {
        const piece = buf.subarray(start, nl);
        start = nl + 1;
        row++;
        if (row > limits.maxRows) throw tooManyRows(file, row, limits.maxRows);
        if (pendingBytes + piece.length > MAX_ROW_BYTES) throw tooLong(file, row);
        const bytes = pending.length ? Buffer.concat([...pending, piece]) : piece;
        pending = [];
        pendingBytes = 0;
        const value = parse(bytes);
        if (value !== SKIP) yield { row, value };
      }
      if (start < buf.length) {
        pendingBytes += buf.length - start;
        if (pendingBytes > MAX_ROW_BYTES) throw tooLong(file, row + 1);
        pending.push(buf.subarray(start));
      }
    }
    if (pendingBytes > 0) {
      row++;
      if (row > limits.maxRows) throw tooManyRows(file, row, limits.maxRows);
      const value = parse(Buffer.concat(pending));
      if (value !== SKIP) yield { row, value };
    }
  } finally {
    stream.destroy();
  }
}

const SKIP = Symbol('blank row');

function parseRow(raw: Buffer, file: string, row: number): unknown {
  const bytes = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
  const text = decodeRow(bytes, file, row);
  if (text.trim() === '') return SKIP;
  if (row === 1 && text.startsWith('\ufeff'))
    throw new InputError('the file starts with a byte order mark (U+FEFF): save it as UTF-8 without a BOM', {
      file,
      row,
    });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`malformed JSON (${visible((err as Error).message)})`, { file, row });
  }
}

function tooManyRows(file: string, row: number, max: number): InputError {
  return new InputError(`more than ${max.toLocaleString('en-US')} rows; a receipt has hundreds`, {
    file,
    row,
  });
}

function tooLong(file: string, row: number): InputError {
  return new InputError(
    `row is longer than the limit of ${MAX_ROW_BYTES.toLocaleString('en-US')} bytes (1 MB); a receipt row is a few hundred bytes`,
    { file, row },
  );
}

/** One row's bytes as text, or an InputError naming the row, the field and the first byte that is not UTF-8. */
function decodeRow(bytes: Buffer, file: string, row: number): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const at = firstInvalidByte(bytes);
  const before = bytes.subarray(0, at).toString('utf8');
  const field = openStringField(before);
  const hex = bytes
    .subarray(at, Math.min(bytes.length, at + 4))
    .toString('hex')
    .toUpperCase()
    .replace(/(..)/g, '0x$1 ')
    .trim();
  throw new InputError(
    `not valid UTF-8 (bytes ${hex} at byte ${at + 1} of the row): save the file as UTF-8`,
    field === undefined ? { file, row } : { file, row, field },
  );
}

/**
 * Offset of the first byte that makes `bytes` invalid UTF-8: the shortest prefix a strict streaming decoder rejects
 * (a prefix that merely ends inside a character is not an error for it), found by bisection; the error path only.
 */
function firstInvalidByte(bytes: Buffer): number {
  const rejects = (n: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: n < bytes.length });
      return false;
    } catch {
      return true;
    }
  };
  let lo = 0;
  let hi = bytes.length; // rejects(hi) is true
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (rejects(mid)) hi = mid;
    else lo = mid;
  }
  // The decoder notices at byte `hi - 1`; the character that is wrong starts at the last offset before it where the
  // bytes so far are complete UTF-8 (a truncated sequence is noticed only at the byte after it).
  for (let p = hi - 1; p > Math.max(0, hi - 5); p--) if (isUtf8(bytes.subarray(0, p))) return p;
  return Math.max(0, hi - 1);
}

/** The key whose string value is open at the end of `json` (a row cut at a bad byte), if any. */
function openStringField(json: string): string | undefined {
  const m = /"((?:[^"\\]|\\.)*)"\s*:\s*"(?:[^"\\]|\\.)*$/.exec(json);
  return m?.[1];
}

/** Invisible characters (a BOM, zero-width spaces, controls) spelled `U+FEFF`, so a message shows what is there. */
export function visible(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ufffd]/g,
    (c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`,
  );
}

/**
 * A whole NDJSON file's bytes as text, checked as `readNdjson` checks a stream: UTF-8 (file, row and field of the
 * first bad byte), no BOM. For the folders of `local run --input` and `submit`, read before anything is uploaded.
 */
export function decodeNdjson(bytes: Buffer, file: string): string {
  if (bytes.subarray(0, 3).equals(BOM))
    throw new InputError('the file starts with a byte order mark (U+FEFF): save it as UTF-8 without a BOM', {
      file,
      row: 1,
    });
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let start = 0;
  for (let row = 1; ; row++) {
    const nl = bytes.indexOf(LF, start);
    const end = nl < 0 ? bytes.length : nl;
    decodeRow(bytes.subarray(start, end), file, row);
    if (nl < 0) break;
    start = nl + 1;
  }
  return bytes.toString('utf8'); // not reached: some row is not UTF-8
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

/** How a row is told apart from the others of its file: a duplicate key is an InputError on `field`. */
interface RowIdentity<T> {
  key: (r: T) => string | number;
  field: string;
  duplicate: (r: T, firstRow: number) => string;
}

/**
 * Reads the rows of one file: each parsed with `schema`, checked against the job's ids, unique by `identity`, then
 * `check`ed; an empty file is an InputError.
 */
async function readRows<T extends { image_id: string; receipt_id: number }>(
  stream: Readable,
  o: {
    schema: z.ZodType<T>;
    expected: ExpectedIds;
    identity: RowIdentity<T>;
    check?: (r: T, row: number) => void;
    file: string;
    limits: NdjsonLimits;
  },
): Promise<T[]> {
  const { file } = o;
  const out: T[] = [];
  const seen = new Map<string | number, number>();
  for await (const { row, value } of readNdjson(stream, file, o.limits)) {
    const r = parseOrThrow(o.schema, value, { file, row });
    checkIds(r, o.expected, file, row);
    const key = o.identity.key(r);
    const first = seen.get(key);
    if (first !== undefined)
      throw new InputError(o.identity.duplicate(r, first), { file, row, field: o.identity.field });
    seen.set(key, row);
    o.check?.(r, row);
    out.push(r);
  }
  if (out.length === 0) throw new InputError('file is empty', { file });
  return out;
}

/** Reads and validates lines.ndjson: full row schema, ids of the job, unique line ids, not empty. */
export function readLines(
  stream: Readable,
  expected: ExpectedIds,
  file = 'lines.ndjson',
  limits: NdjsonLimits = DEFAULT_LIMITS,
): Promise<LineRow[]> {
  return readRows(stream, {
    schema: LineRow,
    expected,
    identity: {
      key: (line) => line.line_id,
      field: 'line_id',
      duplicate: (line, first) => `duplicate line_id ${line.line_id} (first at row ${first})`,
    },
    file,
    limits,
  });
}

/**
 * Reads and validates words.ndjson: full row schema, ids of the job, unique (line_id, word_id), every word on a known
 * line (when `lineIds` is given), not empty.
 */
export function readWords(
  stream: Readable,
  expected: ExpectedIds,
  lineIds?: ReadonlySet<number>,
  file = 'words.ndjson',
  limits: NdjsonLimits = DEFAULT_LIMITS,
): Promise<WordRow[]> {
  return readRows(stream, {
    schema: WordRow,
    expected,
    identity: {
      key: (word) => `${word.line_id}:${word.word_id}`,
      field: 'word_id',
      duplicate: (word, first) =>
        `duplicate word (line_id ${word.line_id}, word_id ${word.word_id}; first at row ${first})`,
    },
    check: (word, row) => {
      if (lineIds && !lineIds.has(word.line_id))
        throw new InputError(`line_id ${word.line_id} is not in lines.ndjson`, {
          file,
          row,
          field: 'line_id',
        });
    },
    file,
    limits,
  });
}

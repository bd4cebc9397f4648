import type { LineRow, WordRow } from '../contracts/ndjson-rows.js';
import { MERCHANTS, type Branch, type Merchant } from './merchants.js';

/**
 * Deterministic synthetic receipts in the exact lines.ndjson / words.ndjson row format
 * (docs/adr/0009-wire-contracts.md): several merchants with branches, phones, addresses and URLs carried as
 * `extracted_data`, noise lines, multi-line visual rows (item name left, price right, sometimes a quantity line in
 * between) and realistic geometry (normalised, y = 0 at the bottom, a slight rotation). The same seed always gives the
 * same receipt, byte for byte. Used by the tests, local mode and the benchmarks.
 */

/** Deliberately bad receipts, each with the error the worker must report. */
export const DEFECTS = [
  'malformed-json',
  'missing-field',
  'bad-value',
  'not-a-uuid',
  'wrong-image-id',
  'wrong-receipt-id',
  'empty-lines',
  'empty-words',
  'duplicate-line-id',
  'duplicate-word-id',
  'unknown-line',
] as const;
export type Defect = (typeof DEFECTS)[number];

export interface ExpectedDefect {
  kind: Defect;
  file: 'lines.ndjson' | 'words.ndjson';
  /** 1-based NDJSON row, when the error is about one row. */
  row?: number;
  field?: string;
}

export interface GenerateOptions {
  /** Index into MERCHANTS (default: from the seed). */
  merchant?: number;
  /** Index into the merchant's branches (default: from the seed). */
  branch?: number;
  imageId?: string;
  receiptId?: number;
  /** Item rows (default 3–8 from the seed). */
  items?: number;
  /** Include the website line (default: from the seed, usually yes). */
  url?: boolean;
  /** Rotation in degrees (default: ±0.3 from the seed). */
  angleDegrees?: number;
  defect?: Defect;
}

export interface GeneratedReceipt {
  imageId: string;
  receiptId: number;
  merchant: {
    name: string;
    category: string;
    url: string;
    branch: Branch;
    index: number;
    branchIndex: number;
  };
  /** Valid rows (before any defect is applied). */
  lines: LineRow[];
  words: WordRow[];
  linesNdjson: string;
  wordsNdjson: string;
  defect?: ExpectedDefect;
}

/** mulberry32: small, fast, good enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A UUID (v4 layout) drawn from the generator. */
export function seededUuid(rand: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(rand() * 4) + 8) as number).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

type Align = 'left' | 'right' | 'center' | 'middle';
interface Extracted {
  [key: string]: unknown;
  type: string;
  value: string;
}
interface PlannedLine {
  text: string;
  align: Align;
  noise?: boolean;
  /** Data-detector result per word index (or for every word). */
  extracted?: (wordIndex: number, word: string) => Extracted | null;
}

const money = (n: number) => n.toFixed(2);
const r6 = (n: number) => Math.round(n * 1e6) / 1e6;

function plan(m: Merchant, b: Branch, rand: () => number, opts: GenerateOptions): PlannedLine[][] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const address = `${b.street}, ${b.city}, ${b.state} ${b.zip}`;
  const addr = (): Extracted => ({ type: 'address', value: address });
  const rows: PlannedLine[][] = [];
  rows.push([{ text: m.name.toUpperCase(), align: 'center' }]);
  rows.push([{ text: b.street, align: 'center', extracted: addr }]);
  rows.push([{ text: `${b.city}, ${b.state} ${b.zip}`, align: 'center', extracted: addr }]);
  rows.push([
    {
      text: `TEL ${b.phone}`,
      align: 'center',
      extracted: (i) => (i === 0 ? null : { type: 'phone', value: b.phone }),
    },
  ]);
  if (opts.url ?? rand() < 0.85)
    rows.push([{ text: m.url, align: 'center', extracted: () => ({ type: 'url', value: m.url }) }]);
  const month = 1 + Math.floor(rand() * 12);
  const day = 1 + Math.floor(rand() * 28);
  const date = `${String(month).padStart(2, '0')}/${String(day).padStart(2, '0')}/2025`;
  const hour = 7 + Math.floor(rand() * 13);
  const minute = Math.floor(rand() * 60);
  const time = `${((hour + 11) % 12) + 1}:${String(minute).padStart(2, '0')} ${hour < 12 ? 'AM' : 'PM'}`;
  rows.push([
    { text: date, align: 'left', extracted: () => ({ type: 'date', value: date }) },
    { text: time, align: 'right' },
  ]);
  rows.push([
    {
      text: pick(['----------------------', '* * * * * * * * *', '======================']),
      align: 'center',
      noise: true,
    },
  ]);
  const count = opts.items ?? 3 + Math.floor(rand() * 6);
  let subtotal = 0;
  for (let i = 0; i < count; i++) {
    const [name, price] = m.items[Math.floor(rand() * m.items.length)]!;
    const qty = rand() < 0.25 ? 2 + Math.floor(rand() * 3) : 1;
    const total = price * qty;
    subtotal += total;
    const row: PlannedLine[] = [{ text: name, align: 'left' }];
    if (qty > 1) row.push({ text: `${qty} @ ${money(price)}`, align: 'middle' });
    row.push({ text: money(total), align: 'right' });
    rows.push(row);
  }
  if (rand() < 0.5) rows.push([{ text: pick(['#@!~', '|||| |', '.. ..']), align: 'center', noise: true }]);
  const tax = Math.round(subtotal * 0.0775 * 100) / 100;
  rows.push([
    { text: 'SUBTOTAL', align: 'left' },
    { text: money(subtotal), align: 'right' },
  ]);
  rows.push([
    { text: 'TAX', align: 'left' },
    { text: money(tax), align: 'right' },
  ]);
  rows.push([
    { text: 'TOTAL', align: 'left' },
    { text: money(subtotal + tax), align: 'right' },
  ]);
  rows.push([
    {
      text: `${pick(['VISA', 'MASTERCARD', 'AMEX', 'DEBIT'])} ****${1000 + Math.floor(rand() * 9000)}`,
      align: 'left',
    },
    { text: money(subtotal + tax), align: 'right' },
  ]);
  rows.push([{ text: m.footer, align: 'center' }]);
  return rows;
}

export function generateReceipt(seed: number, opts: GenerateOptions = {}): GeneratedReceipt {
  const rand = prng(seed);
  const merchantIndex = (opts.merchant ?? Math.floor(rand() * MERCHANTS.length)) % MERCHANTS.length;
  const m = MERCHANTS[merchantIndex]!;
  const branchIndex = (opts.branch ?? Math.floor(rand() * m.branches.length)) % m.branches.length;
  const b = m.branches[branchIndex]!;
  const imageId = opts.imageId ?? seededUuid(rand);
  const receiptId = opts.receiptId ?? 1 + Math.floor(rand() * 3);
  const rows = plan(m, b, rand, opts);

  const angle = opts.angleDegrees ?? (rand() - 0.5) * 0.6;
  const rad = (angle * Math.PI) / 180;
  const pitch = Math.min(0.045, 0.9 / rows.length);
  const height = pitch * 0.62;
  const charW = Math.min(0.022, 0.8 / 32);

  const lines: LineRow[] = [];
  const words: WordRow[] = [];
  let lineId = 0;
  rows.forEach((row, r) => {
    const baseY = 0.96 - (r + 1) * pitch;
    for (const pl of row) {
      lineId++;
      const width = Math.min(0.88, pl.text.length * charW);
      const x =
        pl.align === 'left'
          ? 0.05 + rand() * 0.01
          : pl.align === 'right'
            ? 0.95 - width - rand() * 0.01
            : pl.align === 'middle'
              ? 0.48 - width / 2
              : (1 - width) / 2 + (rand() - 0.5) * 0.01;
      // Lines of one printed row are not perfectly level: a small vertical jitter, well within the row's band.
      const y = baseY + (rand() - 0.5) * height * 0.3;
      const confidence = r6(0.86 + rand() * 0.14);
      const geo = shape(x, y, width, height, rad);
      const line: LineRow = {
        receipt_id: receiptId,
        image_id: imageId,
        line_id: lineId,
        text: pl.text,
        ...geo,
        confidence,
        embedding_status: 'NONE',
        is_noise: pl.noise ?? false,
      };
      lines.push(line);
      const tokens = pl.text.split(' ').filter(Boolean);
      let cursor = 0;
      tokens.forEach((tok, i) => {
        const wx = x + (cursor / pl.text.length) * width;
        const ww = (tok.length / pl.text.length) * width;
        cursor += tok.length + 1;
        const wgeo = shape(wx, y, ww, height, rad);
        words.push({
          receipt_id: receiptId,
          image_id: imageId,
          line_id: lineId,
          word_id: i + 1,
          text: tok,
          ...wgeo,
          confidence: r6(Math.min(1, confidence + (rand() - 0.5) * 0.04)),
          extracted_data: pl.extracted?.(i, tok) ?? null,
          embedding_status: 'NONE',
          is_noise: pl.noise ?? false,
        });
      });
    }
  });

  const receipt: GeneratedReceipt = {
    imageId,
    receiptId,
    merchant: {
      name: m.name,
      category: m.category,
      url: m.url,
      branch: b,
      index: merchantIndex,
      branchIndex,
    },
    lines,
    words,
    linesNdjson: toNdjson(lines),
    wordsNdjson: toNdjson(words),
  };
  if (opts.defect) applyDefect(receipt, opts.defect, rand);
  return receipt;
}

/** `n` receipts from one seed, cycling through merchants so every merchant appears; distinct image ids. */
export function generateReceipts(
  n: number,
  seed: number,
  opts: Omit<GenerateOptions, 'imageId' | 'merchant'> = {},
): GeneratedReceipt[] {
  return Array.from({ length: n }, (_, i) =>
    generateReceipt(seed * 100_003 + i, { ...opts, merchant: i % MERCHANTS.length }),
  );
}

/** Rows as the original exporter wrote them: one JSON object per line, `\n`-joined, no trailing newline. */
export function toNdjson(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n');
}

/** Axis-aligned box rotated by `rad` about its bottom-left corner; the bounding box encloses the corners. */
function shape(x: number, y: number, w: number, h: number, rad: number) {
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const at = (dx: number, dy: number) => ({ x: r6(x + dx * cos - dy * sin), y: r6(y + dx * sin + dy * cos) });
  const bottom_left = at(0, 0);
  const bottom_right = at(w, 0);
  const top_left = at(0, h);
  const top_right = at(w, h);
  const xs = [bottom_left.x, bottom_right.x, top_left.x, top_right.x];
  const ys = [bottom_left.y, bottom_right.y, top_left.y, top_right.y];
  const bx = Math.min(...xs);
  const by = Math.min(...ys);
  return {
    bounding_box: { x: r6(bx), y: r6(by), width: r6(Math.max(...xs) - bx), height: r6(Math.max(...ys) - by) },
    top_left,
    top_right,
    bottom_left,
    bottom_right,
    angle_degrees: r6((rad * 180) / Math.PI),
    angle_radians: r6(rad),
  };
}

function applyDefect(r: GeneratedReceipt, kind: Defect, rand: () => number): void {
  const lines = r.lines.map((l) => ({ ...l }) as Record<string, unknown>);
  const words = r.words.map((w) => ({ ...w }) as Record<string, unknown>);
  const li = 1 + Math.floor(rand() * (lines.length - 1)); // 0-based index, never the first row
  const wi = 1 + Math.floor(rand() * (words.length - 1));
  let linesText: string | undefined;
  let wordsText: string | undefined;
  let d: ExpectedDefect;
  switch (kind) {
    case 'malformed-json': {
      const rows = lines.map((l) => JSON.stringify(l));
      rows[li] = rows[li]!.slice(0, Math.floor(rows[li]!.length / 2));
      linesText = rows.join('\n');
      d = { kind, file: 'lines.ndjson', row: li + 1 };
      break;
    }
    case 'missing-field':
      delete lines[li]!.bounding_box;
      d = { kind, file: 'lines.ndjson', row: li + 1, field: 'bounding_box' };
      break;
    case 'bad-value':
      words[wi]!.confidence = 1.7;
      d = { kind, file: 'words.ndjson', row: wi + 1, field: 'confidence' };
      break;
    case 'not-a-uuid':
      lines[li]!.image_id = 'not-a-uuid';
      d = { kind, file: 'lines.ndjson', row: li + 1, field: 'image_id' };
      break;
    case 'wrong-image-id':
      words[wi]!.image_id = seededUuid(rand);
      d = { kind, file: 'words.ndjson', row: wi + 1, field: 'image_id' };
      break;
    case 'wrong-receipt-id':
      lines[li]!.receipt_id = r.receiptId + 1;
      d = { kind, file: 'lines.ndjson', row: li + 1, field: 'receipt_id' };
      break;
    case 'empty-lines':
      linesText = '';
      d = { kind, file: 'lines.ndjson' };
      break;
    case 'empty-words':
      wordsText = '\n';
      d = { kind, file: 'words.ndjson' };
      break;
    case 'duplicate-line-id':
      lines[li]!.line_id = lines[li - 1]!.line_id;
      d = { kind, file: 'lines.ndjson', row: li + 1, field: 'line_id' };
      break;
    case 'duplicate-word-id': {
      const prev = words[wi - 1]!;
      words[wi]!.line_id = prev.line_id;
      words[wi]!.word_id = prev.word_id;
      d = { kind, file: 'words.ndjson', row: wi + 1, field: 'word_id' };
      break;
    }
    case 'unknown-line':
      words[wi]!.line_id = 9999;
      d = { kind, file: 'words.ndjson', row: wi + 1, field: 'line_id' };
      break;
  }
  r.linesNdjson = linesText ?? toNdjson(lines);
  r.wordsNdjson = wordsText ?? toNdjson(words);
  r.defect = d;
}

/** The original layout of artifact keys: receipts/{image_id}/receipt-{receipt_id:05d}/{lines,words}.ndjson. */
export function artifactKeys(imageId: string, receiptId: number): { linesKey: string; wordsKey: string } {
  const base = `receipts/${imageId}/receipt-${String(receiptId).padStart(5, '0')}`;
  return { linesKey: `${base}/lines.ndjson`, wordsKey: `${base}/words.ndjson` };
}

/** The EMBED message that points at a receipt's artifacts in `bucket`, keys in the original layout. */
export function embedMessageFor(
  r: { imageId: string; receiptId: number },
  bucket: string,
): { image_id: string; receipt_id: number; artifacts_bucket: string; lines_key: string; words_key: string } {
  const { linesKey, wordsKey } = artifactKeys(r.imageId, r.receiptId);
  return {
    image_id: r.imageId,
    receipt_id: r.receiptId,
    artifacts_bucket: bucket,
    lines_key: linesKey,
    words_key: wordsKey,
  };
}

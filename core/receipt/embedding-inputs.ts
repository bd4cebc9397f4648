import type { LineRow, WordRow } from '../contracts/ndjson-rows.js';
import { lineVectorId, wordVectorId } from '../contracts/ids.js';
import type { Metadata } from '../ports/vector-store.js';
import { collectAnchors, titleCase } from './anchors.js';
import { centroid, isNoise } from './geometry.js';
import { labelKey, summarizeLabels, type WordLabel } from './labels.js';
import { rowInput, visualRows, type VisualRow } from './visual-rows.js';
import { wordWindows } from './word-windows.js';

/** `source` of every vector this worker writes (the original used it for realtime and batch alike). */
export const SOURCE = 'openai_embedding_batch';

/** One vector to be: its id, the text sent to the embedder, the stored document and metadata. */
export interface EmbeddingItem {
  id: string;
  input: string;
  document: string;
  metadata: Metadata;
}

export interface ReceiptInput {
  imageId: string;
  receiptId: number;
  lines: LineRow[];
  words: WordRow[];
  labels?: WordLabel[];
}

export interface ReceiptItems {
  rows: VisualRow[];
  lines: EmbeddingItem[];
  words: EmbeddingItem[];
  /** Line id → index into `lines`/`rows` (every line of a row maps to the row). */
  rowOfLine: Map<number, number>;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/**
 * Builds the embedding inputs of one receipt (docs/adr/0010-embedding-inputs-and-metadata.md): visual rows (row above /
 * row / row below) for the `lines` collection and two-neighbour word windows for `words`, with ids and metadata. Noise
 * lines and words are skipped. The merchant is not part of any input; add it with `applyMerchant` once resolved.
 */
export function buildReceiptItems(r: ReceiptInput): ReceiptItems {
  const lines = r.lines.filter((l) => !isNoise(l));
  const words = r.words.filter((w) => !isNoise(w));
  const labelsByWord = new Map<string, WordLabel[]>();
  for (const l of r.labels ?? []) {
    const k = labelKey(l.line_id, l.word_id);
    labelsByWord.set(k, [...(labelsByWord.get(k) ?? []), l]);
  }
  const wordsByLine = new Map<number, WordRow[]>();
  for (const w of words) wordsByLine.set(w.line_id, [...(wordsByLine.get(w.line_id) ?? []), w]);

  const rows = visualRows(lines);
  const rowOfLine = new Map<number, number>();
  const lineItems = rows.map((row, i): EmbeddingItem => {
    row.lines.forEach((l) => rowOfLine.set(l.line_id, i));
    const rowWords = row.lines.flatMap((l) => wordsByLine.get(l.line_id) ?? []);
    const anchors = collectAnchors(rowWords.map((w) => w.extracted_data));
    const labels = summarizeLabels(
      rowWords.flatMap((w) => labelsByWord.get(labelKey(w.line_id, w.word_id)) ?? []),
      true,
    );
    const confidence = round(mean(row.lines.map((l) => l.confidence)));
    const metadata: Metadata = {
      image_id: r.imageId,
      receipt_id: r.receiptId,
      line_id: row.primary.line_id,
      text: row.text,
      confidence,
      avg_word_confidence: confidence,
      x: round(row.box.x),
      y: round(row.box.y),
      width: round(row.box.width),
      height: round(row.box.height),
      angle_degrees: round(mean(row.lines.map((l) => l.angle_degrees))),
      source: SOURCE,
      row_line_ids: JSON.stringify(row.lines.map((l) => l.line_id)),
      ...anchors,
      label_status: labels.label_status,
      ...labelArrays(labels),
    };
    return {
      id: lineVectorId(r.imageId, r.receiptId, row.primary.line_id),
      input: rowInput(rows, i),
      document: row.text,
      metadata,
    };
  });

  const windows = wordWindows(words);
  const wordItems = words.map((w, i): EmbeddingItem => {
    const win = windows[i]!;
    const c = centroid(w);
    const labels = summarizeLabels(labelsByWord.get(labelKey(w.line_id, w.word_id)) ?? []);
    const metadata: Metadata = {
      image_id: r.imageId,
      receipt_id: r.receiptId,
      line_id: w.line_id,
      word_id: w.word_id,
      source: SOURCE,
      text: w.text,
      x: round(c.x),
      y: round(c.y),
      width: round(w.bounding_box.width),
      height: round(w.bounding_box.height),
      bbox_x: round(w.bounding_box.x),
      bbox_y: round(w.bounding_box.y),
      angle_degrees: round(w.angle_degrees),
      confidence: w.confidence,
      left: win.left[win.left.length - 1]!,
      right: win.right[0]!,
      merchant_name: '',
      ...collectAnchors([w.extracted_data]),
      label_status: labels.label_status,
      ...labelArrays(labels),
      ...(labels.validatedAt ? { label_validated_at: labels.validatedAt } : {}),
      ...(labels.proposedBy ? { label_proposed_by: labels.proposedBy } : {}),
    };
    return {
      id: wordVectorId(r.imageId, r.receiptId, w.line_id, w.word_id),
      input: win.input,
      document: w.text,
      metadata,
    };
  });
  return { rows, lines: lineItems, words: wordItems, rowOfLine };
}

/**
 * Label arrays as metadata. The VectorStore port (like Chroma 1.0) takes scalar metadata only, so the sorted core
 * labels are stored as comma-separated strings (`valid_labels` / `invalid_labels`), present only when non-empty.
 */
function labelArrays(s: { valid: string[]; invalid: string[] }): Metadata {
  return {
    ...(s.valid.length ? { valid_labels: s.valid.join(',') } : {}),
    ...(s.invalid.length ? { invalid_labels: s.invalid.join(',') } : {}),
  };
}

/**
 * Adds the resolved merchant: rows get `merchant_name` (Title Case) only when there is one, words always carry it
 * (empty string when unresolved), as in the original.
 */
export function applyMerchant(items: ReceiptItems, merchant: string | undefined): void {
  const name = merchant ? titleCase(merchant) : undefined;
  for (const it of items.lines) {
    if (name) it.metadata.merchant_name = name;
    else delete it.metadata.merchant_name;
  }
  for (const it of items.words) it.metadata.merchant_name = name ?? '';
}

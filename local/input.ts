import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { EmbedMessage } from '../core/contracts/embed-message.js';
import { UUID_PATTERN } from '../core/contracts/validation.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Queue } from '../core/ports/queue.js';
import { putReceipt, type GeneratedReceipt } from '../core/sample/index.js';

/**
 * Receipts from a folder of NDJSON pairs, and submission (NDJSON → object store → EMBED message) shared by
 * `local run` and `submit` in both modes. A folder may hold either layout, at any depth:
 *   <any>/lines.ndjson + <any>/words.ndjson          (one receipt per directory, the original's layout)
 *   <name>.lines.ndjson + <name>.words.ndjson        (pairs side by side)
 * Only the first row of lines.ndjson is read here, for the receipt's ids; the worker validates every row and
 * reports a bad one with its file, row and field, without stopping the other receipts.
 */
export interface InputReceipt {
  /** Path relative to the folder, for messages. */
  source: string;
  imageId: string;
  receiptId: number;
  linesNdjson: string;
  wordsNdjson: string;
}

export interface Rejected {
  source: string;
  reason: string;
}

export async function readInputFolder(
  folder: string,
): Promise<{ receipts: InputReceipt[]; rejected: Rejected[] }> {
  const s = await stat(folder).catch(() => undefined);
  if (!s?.isDirectory()) throw new Error(`--input ${folder} is not a directory`);
  const files = (await walk(folder)).filter((f) => f.endsWith('.ndjson')).sort();
  const pairs = new Map<string, { lines?: string; words?: string }>();
  const rejected: Rejected[] = [];
  for (const f of files) {
    const name = basename(f);
    const m = /^(?:(.*)\.)?(lines|words)\.ndjson$/.exec(name);
    if (!m) {
      rejected.push({
        source: relative(folder, f),
        reason: 'not named lines.ndjson / words.ndjson or <name>.lines.ndjson / <name>.words.ndjson',
      });
      continue;
    }
    const key = join(dirname(f), m[1] ?? '');
    const pair = pairs.get(key) ?? {};
    pair[m[2] as 'lines' | 'words'] = f;
    pairs.set(key, pair);
  }
  const receipts: InputReceipt[] = [];
  const seen = new Map<string, string>();
  for (const [key, pair] of pairs) {
    const source = relative(folder, key) || '.';
    if (!pair.lines || !pair.words) {
      rejected.push({ source, reason: `${pair.lines ? 'words' : 'lines'}.ndjson is missing` });
      continue;
    }
    const [lines, words] = await Promise.all([readFile(pair.lines, 'utf8'), readFile(pair.words, 'utf8')]);
    const ids = idsOf(lines);
    if ('reason' in ids) {
      rejected.push({ source, reason: `${relative(folder, pair.lines)}: ${ids.reason}` });
      continue;
    }
    const id = `${ids.imageId.toLowerCase()}#${ids.receiptId}`;
    const other = seen.get(id);
    if (other) {
      rejected.push({ source, reason: `same image_id and receipt_id as ${other}` });
      continue;
    }
    seen.set(id, source);
    receipts.push({ source, ...ids, linesNdjson: lines, wordsNdjson: words });
  }
  return { receipts, rejected };
}

/** The receipt's ids from the first non-blank row of lines.ndjson, or why they cannot be read. */
function idsOf(lines: string): { imageId: string; receiptId: number } | { reason: string } {
  const rows = lines.split('\n');
  const index = rows.findIndex((r) => r.trim() !== '');
  if (index < 0) return { reason: 'empty file' };
  let row: unknown;
  try {
    row = JSON.parse(rows[index]!);
  } catch (err) {
    return { reason: `row ${index + 1}: malformed JSON (${(err as Error).message})` };
  }
  const r = row as { image_id?: unknown; receipt_id?: unknown };
  if (typeof r.image_id !== 'string' || !new RegExp(UUID_PATTERN).test(r.image_id)) {
    return { reason: `row ${index + 1}, field image_id: must be a UUID` };
  }
  if (typeof r.receipt_id !== 'number' || !Number.isInteger(r.receipt_id) || r.receipt_id < 1) {
    return { reason: `row ${index + 1}, field receipt_id: must be an integer >= 1` };
  }
  return { imageId: r.image_id, receiptId: r.receipt_id };
}

/** Uploads both files of each receipt to `{bucket}/receipts/{image}/receipt-{n}/` and sends one EMBED message each. */
export async function submitReceipts(
  store: ObjectStore,
  queue: Queue,
  bucket: string,
  receipts: (InputReceipt | GeneratedReceipt)[],
): Promise<EmbedMessage[]> {
  // A few uploads at once (each one fsyncs), messages in input order.
  const messages = new Array<EmbedMessage>(receipts.length);
  let next = 0;
  const uploader = async () => {
    for (let i = next++; i < receipts.length; i = next++) {
      // putReceipt reads only the ids and the two NDJSON texts, which an input receipt has too.
      messages[i] = await putReceipt(store, bucket, receipts[i] as GeneratedReceipt);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, receipts.length) }, uploader));
  // Sent after every upload: a message never points at an object that is not there yet.
  await queue.send(messages.map((m) => ({ body: JSON.stringify(m) })));
  return messages;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

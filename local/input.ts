import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { EmbedMessage } from '../core/contracts/embed-message.js';
import { UUID_PATTERN } from '../core/contracts/validation.js';
import { errorMessage, InputError } from '../core/errors.js';
import { decodeNdjson, visible } from '../core/receipt/ndjson-reader.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Queue } from '../core/ports/queue.js';
import { embedMessageFor, type GeneratedReceipt } from '../core/sample/index.js';

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
    // Bytes, decoded strictly: a file that is not UTF-8 is named with its row and field here, before any upload
    // (reading it as 'utf8' would store U+FFFD in place of the bad bytes and the worker could not tell).
    const [linesBytes, wordsBytes] = await Promise.all([readFile(pair.lines), readFile(pair.words)]);
    let lines: string;
    let words: string;
    try {
      lines = decodeNdjson(linesBytes, relative(folder, pair.lines));
      words = decodeNdjson(wordsBytes, relative(folder, pair.words));
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      rejected.push({ source, reason: errorMessage(err) });
      continue;
    }
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
    return { reason: `row ${index + 1}: malformed JSON (${visible((err as Error).message)})` };
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

/** Object metadata on both NDJSON files: the SHA-256 of the receipt's content (both files), to skip it next time. */
export const CONTENT_HASH_METADATA = 'content-sha256';

/** SHA-256 over both files of a receipt: the same content gives the same hash, any changed byte another. */
export function contentHash(r: { linesNdjson: string; wordsNdjson: string }): string {
  return createHash('sha256')
    .update(`${Buffer.byteLength(r.linesNdjson)}\n`)
    .update(r.linesNdjson)
    .update(r.wordsNdjson)
    .digest('hex');
}

export interface SubmitOutcome {
  /** Uploaded and sent this time, in input order. */
  sent: EmbedMessage[];
  /** Already known (`known` says so) with the same content in the store: neither uploaded nor sent again. */
  unchanged: EmbedMessage[];
}

/**
 * Uploads both files of each receipt to `{bucket}/receipts/{image}/receipt-{n}/` with the content hash as metadata,
 * and sends one EMBED message each. A receipt that `known` recognises (local mode: its job exists) and whose stored
 * files carry the same content hash is skipped: a rerun re-uploads and re-queues nothing. Without `known` (cloud
 * mode, where a message may still be on its way) every receipt is sent.
 */
export async function submitReceipts(
  store: ObjectStore,
  queue: Queue,
  bucket: string,
  receipts: (InputReceipt | GeneratedReceipt)[],
  o: { known?: (message: EmbedMessage) => boolean } = {},
): Promise<SubmitOutcome> {
  const messages: EmbedMessage[] = receipts.map((r) => embedMessageFor(r, bucket));
  const fresh = new Array<boolean>(receipts.length).fill(true);
  // A few uploads (or checks) at once (each upload fsyncs), messages in input order.
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < receipts.length; i = next++) {
      const r = receipts[i]!;
      const m = messages[i]!;
      const hash = contentHash(r);
      if (o.known?.(m)) {
        const [lines, words] = await Promise.all([
          store.head(bucket, m.lines_key),
          store.head(bucket, m.words_key),
        ]);
        if (
          lines?.metadata?.[CONTENT_HASH_METADATA] === hash &&
          words?.metadata?.[CONTENT_HASH_METADATA] === hash
        ) {
          fresh[i] = false;
          continue;
        }
      }
      const options = { contentType: 'application/x-ndjson', metadata: { [CONTENT_HASH_METADATA]: hash } };
      await Promise.all([
        store.put(bucket, m.lines_key, r.linesNdjson, options),
        store.put(bucket, m.words_key, r.wordsNdjson, options),
      ]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, receipts.length) }, worker));
  const sent = messages.filter((_, i) => fresh[i]);
  // Sent after every upload: a message never points at an object that is not there yet.
  if (sent.length) await queue.send(sent.map((m) => ({ body: JSON.stringify(m) })));
  return { sent, unchanged: messages.filter((_, i) => !fresh[i]) };
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

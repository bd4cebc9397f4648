import type { Collection } from '../core/contracts/ids.js';
import { parseVectorId } from '../core/contracts/ids.js';
import type { Item, Ledger } from '../core/ports/ledger.js';
import type { Metadata, MetadataValue } from '../core/ports/vector-store.js';

/**
 * Ledger-derived vector metadata (docs/adr/0010-embedding-inputs-and-metadata.md), recomputed from the ledger's current
 * state rather than from the message that announced a change. Applying it when a delta is merged *and* when a
 * place/label/section message arrives makes the result independent of arrival order: a place or label written before
 * the delta was merged (the original silently lost those, docs/adr/0008) is applied at merge time; one written after is
 * applied by its own message.
 *
 * Keys owned here (all other keys are the worker's):
 *  - place: merchant_name, merchant_category, address, phone_number, place_id (+ last_place_update / place_removed_at)
 *  - words: label_status, valid_labels, invalid_labels (comma-joined sorted label names)
 *  - lines: label_status, label_{NAME} booleans (true when any word of the row has it VALID, false when only INVALID)
 *  - lines: section_label (plurality of the row's lines' sections; INVALID ignored; ties leave it unset)
 */
export const PLACE_KEYS = [
  'merchant_name',
  'merchant_category',
  'address',
  'phone_number',
  'place_id',
] as const;

export interface ReceiptFacts {
  imageId: string;
  receiptId: number;
  place?: Item;
  placeRemoved: boolean;
  /** Labels per word key `line:word`. */
  labels: Map<string, { label: string; status: string }[]>;
  sections: { type: string; lineIds: number[]; confidence: number; status?: string }[];
}

const pad = (n: number) => String(n).padStart(5, '0');
export const placeSk = (receiptId: number) => `RECEIPT#${pad(receiptId)}#PLACE`;

export async function loadReceiptFacts(
  ledger: Ledger,
  imageId: string,
  receiptId: number,
  placeRemoved = false,
): Promise<ReceiptFacts> {
  const pk = `IMAGE#${imageId}`;
  const prefix = `RECEIPT#${pad(receiptId)}#`;
  const [place, lineItems, sectionItems] = await Promise.all([
    ledger.getItem({ PK: pk, SK: placeSk(receiptId) }),
    ledger.query(pk, `${prefix}LINE#`),
    ledger.query(pk, `${prefix}SECTION#`),
  ]);
  const labels = new Map<string, { label: string; status: string }[]>();
  for (const item of lineItems) {
    const m = /#LINE#(\d+)#WORD#(\d+)#LABEL#(.+)$/.exec(item.SK);
    if (!m) continue;
    const key = `${Number(m[1])}:${Number(m[2])}`;
    const list = labels.get(key) ?? [];
    list.push({
      label: (item.label as string | undefined) ?? m[3]!,
      status: String(item.validation_status ?? 'NONE'),
    });
    labels.set(key, list);
  }
  const sections = sectionItems.map((s) => ({
    type: (s.section_type as string | undefined) ?? s.SK.replace(/^.*#SECTION#/, ''),
    lineIds: Array.isArray(s.line_ids) ? (s.line_ids as unknown[]).map(Number) : [],
    confidence: typeof s.confidence === 'number' ? s.confidence : 0,
    ...(typeof s.validation_status === 'string' ? { status: s.validation_status } : {}),
  }));
  return {
    imageId,
    receiptId,
    ...(place ? { place } : {}),
    placeRemoved: placeRemoved && !place,
    labels,
    sections,
  };
}

function labelStatus(statuses: string[]): MetadataValue {
  if (statuses.length === 0) return null;
  if (statuses.includes('VALID')) return 'validated';
  if (statuses.includes('PENDING') || statuses.includes('NONE') || statuses.includes('NEEDS_REVIEW'))
    return 'auto_suggested';
  if (statuses.every((s) => s === 'INVALID')) return 'invalidated';
  return 'unvalidated';
}

/** Line ids a lines-collection vector stands for (a visual row lists them in `row_line_ids`). */
export function rowLineIds(id: string, metadata: Metadata | null | undefined): number[] {
  const raw = metadata?.row_line_ids;
  if (typeof raw === 'string') {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (Array.isArray(parsed)) return parsed.map(Number);
    } catch {
      // fall through
    }
  }
  const p = parseVectorId(id);
  return p ? [p.lineId] : [];
}

/**
 * The metadata a vector should have given the receipt's ledger facts: the input metadata with the owned keys
 * replaced. Returns a new object; `null` values mean "key must be absent".
 */
export function desiredMetadata(
  collection: Collection,
  id: string,
  metadata: Metadata,
  facts: ReceiptFacts,
): Metadata {
  const out: Metadata = { ...metadata };
  // Place
  if (facts.place) {
    const p = facts.place;
    const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v : null);
    out.merchant_name = str(p.merchant_name) ?? (metadata.merchant_name as MetadataValue) ?? null;
    out.merchant_category = str(p.merchant_category);
    out.address = str(p.formatted_address) ?? str(p.address);
    out.phone_number = str(p.phone_number);
    out.place_id = str(p.place_id);
  } else if (facts.placeRemoved) {
    for (const k of PLACE_KEYS) out[k] = null;
  }
  const parsed = parseVectorId(id);
  if (!parsed) return out;
  if (collection === 'words') {
    const list =
      parsed.wordId === undefined ? [] : (facts.labels.get(`${parsed.lineId}:${parsed.wordId}`) ?? []);
    const valid = [...new Set(list.filter((l) => l.status === 'VALID').map((l) => l.label))].sort();
    const invalid = [
      ...new Set(list.filter((l) => l.status === 'INVALID' && !valid.includes(l.label)).map((l) => l.label)),
    ].sort();
    out.label_status = labelStatus(list.map((l) => l.status));
    out.valid_labels = valid.length ? valid.join(',') : null;
    out.invalid_labels = invalid.length ? invalid.join(',') : null;
    return out;
  }
  // lines: labels of every word on the row's lines
  const lines = new Set(rowLineIds(id, metadata));
  const byLabel = new Map<string, string[]>();
  for (const [key, list] of facts.labels) {
    if (!lines.has(Number(key.split(':')[0]))) continue;
    for (const l of list) byLabel.set(l.label, [...(byLabel.get(l.label) ?? []), l.status]);
  }
  for (const k of Object.keys(out)) if (k.startsWith('label_') && k !== 'label_status') out[k] = null;
  for (const [label, statuses] of byLabel) {
    const key = `label_${label}`;
    if (Buffer.byteLength(key) > 36) continue;
    if (statuses.includes('VALID')) out[key] = true;
    else if (statuses.every((s) => s === 'INVALID')) out[key] = false;
  }
  out.label_status = labelStatus([...byLabel.values()].flat());
  // Section: plurality over the row's lines; a line in several sections goes to the most confident one.
  const perLine = new Map<number, { type: string; confidence: number }>();
  for (const s of facts.sections) {
    if (s.status === 'INVALID') continue;
    for (const l of s.lineIds) {
      const prev = perLine.get(l);
      if (!prev || s.confidence > prev.confidence) perLine.set(l, { type: s.type, confidence: s.confidence });
    }
  }
  const votes = new Map<string, number>();
  for (const l of lines) {
    const s = perLine.get(l);
    if (s) votes.set(s.type, (votes.get(s.type) ?? 0) + 1);
  }
  const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1]);
  out.section_label =
    ranked.length && (ranked.length === 1 || ranked[0]![1] > ranked[1]![1]) ? ranked[0]![0] : null;
  return out;
}

/** Metadata without null values (what Chroma stores: absent keys). */
export function stored(m: Metadata): Metadata {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null && v !== undefined));
}

export function sameMetadata(a: Metadata | null | undefined, b: Metadata | null | undefined): boolean {
  const norm = (m: Metadata | null | undefined) =>
    JSON.stringify(Object.entries(stored(m ?? {})).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return norm(a) === norm(b);
}

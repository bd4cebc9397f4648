import { COMPACTION_RUN_SK, runCollections } from '../core/contracts/compaction-run.js';
import type { CompactionMessage, EntityType } from '../core/contracts/compaction-message.js';
import type { Collection } from '../core/contracts/ids.js';
import type { ChangeRecord, Item } from '../core/ports/ledger.js';

/**
 * Change detection (docs/adr/0009-wire-contracts.md), as a pure function from one ledger change to the LINES/WORDS
 * messages it causes, plus the compaction results to report back to EmbeddingJobs. Deliberate differences from the
 * original, each closing one of its failure modes:
 *  - RECEIPT_PLACE and RECEIPT_WORD_LABEL INSERTs emit too (a place or label created after the embed reached no
 *    vector; docs/adr/0008);
 *  - CompactionRun MODIFYs emit nothing (docs/adr/0008, item 16) but are the source of the EmbeddingJob
 *    `status.compaction` report;
 *  - a CompactionRun carries only the collections its job asked for (`spec.collections`): its INSERT emits to those
 *    queues only, and a collection it does not carry is not reported (nor waited for).
 */
export const RELEVANT_FIELDS: Partial<Record<EntityType, readonly string[]>> = {
  RECEIPT_PLACE: ['merchant_name', 'merchant_category', 'formatted_address', 'phone_number', 'place_id'],
  RECEIPT_WORD_LABEL: [
    'label',
    'reasoning',
    'validation_status',
    'label_proposed_by',
    'label_consolidated_from',
  ],
  RECEIPT_SECTION: ['section_type', 'line_ids', 'confidence', 'validation_status'],
};

const TARGETS: Record<EntityType, readonly Collection[]> = {
  COMPACTION_RUN: ['lines', 'words'],
  RECEIPT_PLACE: ['lines', 'words'],
  RECEIPT_WORD_LABEL: ['words', 'lines'],
  RECEIPT_SECTION: ['lines'],
  RECEIPT: ['lines', 'words'],
  RECEIPT_LINE: ['lines'],
  RECEIPT_WORD: ['words'],
};

/** Entity type from the sort key; the first match wins, in the original's order. */
export function entityTypeOf(sk: string): EntityType | undefined {
  if (sk.includes('#PLACE')) return 'RECEIPT_PLACE';
  if (sk.includes('#LABEL#')) return 'RECEIPT_WORD_LABEL';
  if (sk.includes('#SECTION#')) return 'RECEIPT_SECTION';
  if (sk.includes('#COMPACTION_RUN#')) return 'COMPACTION_RUN';
  if (sk.includes('#WORD#') && sk.includes('#LINE#')) return 'RECEIPT_WORD';
  if (sk.includes('#LINE#')) return 'RECEIPT_LINE';
  if (/^RECEIPT#\d{5}$/.test(sk)) return 'RECEIPT';
  return undefined;
}

/** Identifying fields parsed from the keys (never trusting the image alone). */
export function entityData(type: EntityType, keys: { PK: string; SK: string }): Record<string, unknown> {
  const data: Record<string, unknown> = { entity_type: type, image_id: keys.PK.replace(/^IMAGE#/, '') };
  const num = (re: RegExp) => {
    const m = re.exec(keys.SK);
    return m ? Number(m[1]) : undefined;
  };
  data.receipt_id = num(/^RECEIPT#(\d+)/);
  if (type === 'RECEIPT_LINE' || type === 'RECEIPT_WORD' || type === 'RECEIPT_WORD_LABEL')
    data.line_id = num(/#LINE#(\d+)/);
  if (type === 'RECEIPT_WORD' || type === 'RECEIPT_WORD_LABEL') data.word_id = num(/#WORD#(\d+)/);
  if (type === 'RECEIPT_WORD_LABEL') data.label = /#LABEL#(.+)$/.exec(keys.SK)?.[1];
  if (type === 'RECEIPT_SECTION') data.section_type = /#SECTION#(.+)$/.exec(keys.SK)?.[1];
  return data;
}

export function changedFields(
  fields: readonly string[],
  oldImage: Item | undefined,
  newImage: Item | undefined,
): Record<string, { old?: unknown; new?: unknown }> {
  const changes: Record<string, { old?: unknown; new?: unknown }> = {};
  for (const f of fields) {
    const o = oldImage?.[f];
    const n = newImage?.[f];
    if (JSON.stringify(o) !== JSON.stringify(n)) changes[f] = { old: o ?? null, new: n ?? null };
  }
  return changes;
}

export interface Outgoing {
  collection: Collection;
  message: CompactionMessage;
}

export interface CompactionReport {
  jobName: string;
  runId: string;
  imageId: string;
  receiptId: number;
  collection: Collection;
  state: 'Completed' | 'Failed';
  mergedVectors?: number;
  error?: string;
  /**
   * The collections the run carries: the Compacted condition waits for these only (a collection the job left out
   * is not applicable). Absent in a report of unknown origin: the job's `spec.collections` decide.
   */
  runCollections?: Collection[];
}

export interface Detection {
  messages: Outgoing[];
  reports: CompactionReport[];
}

export function detect(record: ChangeRecord, timestamp: string): Detection {
  const none: Detection = { messages: [], reports: [] };
  if (!record.keys.PK.startsWith('IMAGE#')) return none;
  const type = entityTypeOf(record.keys.SK);
  if (!type) return none;
  const base = (entity_data: Record<string, unknown>, changes: CompactionMessage['changes']) => ({
    source: 'dynamodb_stream' as const,
    entity_type: type,
    entity_data,
    changes,
    event_name: record.eventName,
    timestamp,
    stream_record_id: record.id,
    ...(record.region ? { aws_region: record.region } : {}),
  });

  if (type === 'COMPACTION_RUN') {
    if (record.eventName === 'INSERT' && record.newImage)
      return { messages: runMessages(record, base), reports: [] };
    if (record.eventName === 'MODIFY') return { messages: [], reports: runReports(record) };
    return none;
  }

  const fields = RELEVANT_FIELDS[type];
  const data = entityData(type, record.keys);
  let changes: CompactionMessage['changes'] = {};
  if (fields) {
    changes = changedFields(fields, record.oldImage, record.newImage);
    if (record.eventName !== 'REMOVE' && Object.keys(changes).length === 0) return none;
  } else if (record.eventName !== 'REMOVE') {
    // Receipt, line and word INSERT/MODIFYs do not change vectors (the next embed does); only removals do.
    return none;
  }
  return {
    messages: TARGETS[type].map((collection) => ({ collection, message: base(data, changes) })),
    reports: [],
  };
}

function runMessages(
  record: ChangeRecord,
  base: (d: Record<string, unknown>, c: CompactionMessage['changes']) => CompactionMessage,
): Outgoing[] {
  const img = record.newImage!;
  const m = COMPACTION_RUN_SK.exec(record.keys.SK);
  const runId = (img.run_id as string | undefined) ?? m?.[2];
  const imageId = (img.image_id as string | undefined) ?? record.keys.PK.replace(/^IMAGE#/, '');
  const receiptId = (img.receipt_id as number | undefined) ?? (m ? Number(m[1]) : undefined);
  // One message per collection the run carries; a run without any (not a valid row) queues nothing.
  const collections = runCollections(img);
  // A run of the original system (cut-over) names its deltas by prefix; its message carries them as the original's did.
  const deltaKeys = Object.fromEntries(
    collections.flatMap((c) => [
      [`${c}_delta_key`, img[`${c}_delta_key`]],
      [`${c}_delta_prefix`, img[`${c}_delta_prefix`]],
    ]),
  );
  return collections.map((collection) => ({
    collection,
    message: base(
      {
        run_id: runId,
        image_id: imageId,
        receipt_id: receiptId,
        ...deltaKeys,
        delta_key: img[`${collection}_delta_key`],
        delta_s3_prefix: img[`${collection}_delta_prefix`],
        sha256: img[`${collection}_sha256`],
        vectors: img[`${collection}_vectors`],
        ...(img.job_name ? { job_name: img.job_name } : {}),
        ...(img.created_at ? { run_created_at: img.created_at } : {}),
      },
      {},
    ),
  }));
}

function runReports(record: ChangeRecord): CompactionReport[] {
  const img = record.newImage;
  if (!img || typeof img.job_name !== 'string' || !img.job_name) return [];
  const m = COMPACTION_RUN_SK.exec(record.keys.SK);
  const reports: CompactionReport[] = [];
  const collections = runCollections(img);
  for (const c of collections) {
    const now = img[`${c}_state`];
    const before = record.oldImage?.[`${c}_state`];
    if (now === before || (now !== 'COMPLETED' && now !== 'FAILED')) continue;
    const merged = img[`${c}_merged_vectors`];
    const error = img[`${c}_error`];
    reports.push({
      jobName: img.job_name,
      runId: (img.run_id as string | undefined) ?? m?.[2] ?? '',
      imageId: (img.image_id as string | undefined) ?? record.keys.PK.replace(/^IMAGE#/, ''),
      receiptId: Number(img.receipt_id ?? m?.[1]),
      collection: c,
      state: now === 'COMPLETED' ? 'Completed' : 'Failed',
      ...(typeof merged === 'number' ? { mergedVectors: merged } : {}),
      ...(typeof error === 'string' ? { error } : {}),
      runCollections: collections,
    });
  }
  return reports;
}

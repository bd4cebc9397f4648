import { z } from 'zod';
import type { Collection } from './ids.js';

/** LINES / WORDS queue messages (docs/adr/0009-wire-contracts.md). */
export const EntityType = z.enum([
  'COMPACTION_RUN',
  'RECEIPT_PLACE',
  'RECEIPT_WORD_LABEL',
  'RECEIPT_SECTION',
  'RECEIPT',
  'RECEIPT_LINE',
  'RECEIPT_WORD',
]);
export type EntityType = z.infer<typeof EntityType>;

export const EventName = z.enum(['INSERT', 'MODIFY', 'REMOVE']);
export type EventName = z.infer<typeof EventName>;

const Change = z.object({ old: z.unknown().optional(), new: z.unknown().optional() });

/**
 * The original system's stream processor named a receipt's merchant entity RECEIPT_METADATA until Jan 2026
 * (seed-system §2.3; it became RECEIPT_PLACE): accepted as it is and read as RECEIPT_PLACE, so its messages, still
 * queued or sent by its stream processor during a cut-over, mean what they meant.
 */
const AcceptedEntityType = z.union([
  EntityType,
  z.literal('RECEIPT_METADATA').transform((): EntityType => 'RECEIPT_PLACE'),
]);

/**
 * Parses any era's message (docs/adr/0009 item 5): the original's bodies (Python `json.dumps`, `timestamp` with
 * microseconds and `+00:00`, `aws_region`, COMPACTION_RUN data with `{c}_delta_prefix` / `delta_s3_prefix`, the
 * Oct–Dec 2025 COMPACTION_RUN MODIFY "completion" messages) and this project's.
 */
export const CompactionMessage = z
  .object({
    source: z.literal('dynamodb_stream'),
    entity_type: AcceptedEntityType,
    entity_data: z.record(z.string(), z.unknown()),
    changes: z.record(z.string(), Change).default({}),
    event_name: EventName,
    timestamp: z.string().min(1),
    stream_record_id: z.string().min(1),
    aws_region: z.string().optional(),
  })
  .loose();
export type CompactionMessage = z.infer<typeof CompactionMessage>;

/** SQS message attributes sent with every compaction message (all strings). */
export function compactionAttributes(m: CompactionMessage, collection: Collection): Record<string, string> {
  return { source: m.source, entity_type: m.entity_type, event_name: m.event_name, collection };
}

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

export const CompactionMessage = z
  .object({
    source: z.literal('dynamodb_stream'),
    entity_type: EntityType,
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

import { z } from 'zod';
import { BucketName, ObjectKey } from './artifact-location.js';
import { UUID_PATTERN } from './validation.js';

/** EMBED queue body (docs/adr/0009-wire-contracts.md). Unknown fields are kept but ignored. */
export const EmbedMessage = z
  .object({
    image_id: z.string().regex(new RegExp(UUID_PATTERN), 'must be a UUID'),
    receipt_id: z.number().int().min(1),
    artifacts_bucket: BucketName,
    lines_key: ObjectKey,
    words_key: ObjectKey,
  })
  .loose();
export type EmbedMessage = z.infer<typeof EmbedMessage>;

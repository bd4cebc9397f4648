import { z } from 'zod';
import { UUID_PATTERN } from './validation.js';

/** Row schemas of lines.ndjson / words.ndjson (docs/adr/0009-wire-contracts.md), every field kept. */
const Point = z.object({ x: z.number(), y: z.number() });
const BoundingBox = z.object({
  x: z.number(),
  y: z.number(),
  width: z.number().min(0),
  height: z.number().min(0),
});

export const EmbeddingStatus = z.enum(['NONE', 'PENDING', 'SUCCESS', 'FAILED', 'NOISE']);

const geometry = {
  text: z.string(),
  bounding_box: BoundingBox,
  top_left: Point,
  top_right: Point,
  bottom_left: Point,
  bottom_right: Point,
  angle_degrees: z.number(),
  angle_radians: z.number(),
  confidence: z.number().min(0).max(1),
};

const ids = {
  receipt_id: z.number().int().min(1),
  image_id: z.string().regex(new RegExp(UUID_PATTERN), 'must be a UUID'),
  line_id: z.number().int().min(0),
};

export const LineRow = z
  .object({
    ...ids,
    ...geometry,
    embedding_status: EmbeddingStatus.default('NONE'),
    is_noise: z.boolean().default(false),
  })
  .loose();
export type LineRow = z.infer<typeof LineRow>;

/** Apple data-detector result: the only source of phone/address/url anchors. */
export const ExtractedData = z.object({ type: z.string(), value: z.string() }).loose();
export type ExtractedData = z.infer<typeof ExtractedData>;

export const WordRow = z
  .object({
    ...ids,
    word_id: z.number().int().min(0),
    ...geometry,
    extracted_data: ExtractedData.nullable().default(null),
    embedding_status: EmbeddingStatus.default('NONE'),
    is_noise: z.boolean().default(false),
  })
  .loose();
export type WordRow = z.infer<typeof WordRow>;

export type Point = z.infer<typeof Point>;
export type BoundingBox = z.infer<typeof BoundingBox>;

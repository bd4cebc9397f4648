import { z } from 'zod';
import { COLLECTIONS, type Collection } from './ids.js';
import { UUID_PATTERN } from './validation.js';

/** Per-collection state of a CompactionRun (DESIGN §4.4). COMPLETED = every id is in a published snapshot. */
export const RunState = z.enum(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED']);
export type RunState = z.infer<typeof RunState>;

const pad = (n: number) => String(n).padStart(5, '0');

export function runKey(imageId: string, receiptId: number, runId: string): { PK: string; SK: string } {
  return { PK: `IMAGE#${imageId}`, SK: `RECEIPT#${pad(receiptId)}#COMPACTION_RUN#${runId}` };
}

export const COMPACTION_RUN_SK = /^RECEIPT#(\d{5})#COMPACTION_RUN#(.+)$/;

const SHA256 = /^[0-9a-f]{64}$/;

/** The CompactionRun item as stored in the single table; per collection `{c}_state`, `{c}_delta_key`, … */
export const CompactionRunItem = z
  .object({
    PK: z.string().startsWith('IMAGE#'),
    SK: z.string().regex(COMPACTION_RUN_SK),
    TYPE: z.literal('COMPACTION_RUN'),
    run_id: z.string().min(1),
    image_id: z.string().regex(new RegExp(UUID_PATTERN)),
    receipt_id: z.number().int().min(1),
    /** EmbeddingJob (or local job) that produced the run, so compaction results can be reported back. */
    job_name: z.string().optional(),
    model: z.string().optional(),
    dimensions: z.number().int().min(1).optional(),
    created_at: z.string(),
    updated_at: z.string(),
    lines_state: RunState,
    lines_delta_key: z.string().min(1),
    lines_sha256: z.string().regex(SHA256),
    lines_vectors: z.number().int().min(0),
    lines_merged_vectors: z.number().int().min(0).optional(),
    lines_error: z.string().optional(),
    lines_started_at: z.string().optional(),
    lines_finished_at: z.string().optional(),
    words_state: RunState,
    words_delta_key: z.string().min(1),
    words_sha256: z.string().regex(SHA256),
    words_vectors: z.number().int().min(0),
    words_merged_vectors: z.number().int().min(0).optional(),
    words_error: z.string().optional(),
    words_started_at: z.string().optional(),
    words_finished_at: z.string().optional(),
  })
  .loose();
export type CompactionRunItem = z.infer<typeof CompactionRunItem>;

/** One collection's view of a run, without the `{c}_` prefixes. */
export interface RunCollection {
  state: RunState;
  deltaKey: string;
  sha256: string;
  vectors: number;
  mergedVectors?: number;
  error?: string;
}

export function runCollection(item: CompactionRunItem, c: Collection): RunCollection {
  const f = (name: string) => (item as Record<string, unknown>)[`${c}_${name}`];
  return {
    state: f('state') as RunState,
    deltaKey: f('delta_key') as string,
    sha256: f('sha256') as string,
    vectors: f('vectors') as number,
    mergedVectors: f('merged_vectors') as number | undefined,
    error: f('error') as string | undefined,
  };
}

export interface RunDelta {
  key: string;
  sha256: string;
  vectors: number;
}

/** Build a fresh run item with both collections PENDING. */
export function newCompactionRun(args: {
  runId: string;
  imageId: string;
  receiptId: number;
  jobName?: string;
  model?: string;
  dimensions?: number;
  deltas: Record<Collection, RunDelta>;
  now?: Date;
}): CompactionRunItem {
  const now = (args.now ?? new Date()).toISOString();
  const item: Record<string, unknown> = {
    ...runKey(args.imageId, args.receiptId, args.runId),
    TYPE: 'COMPACTION_RUN',
    run_id: args.runId,
    image_id: args.imageId,
    receipt_id: args.receiptId,
    created_at: now,
    updated_at: now,
  };
  if (args.jobName) item.job_name = args.jobName;
  if (args.model) item.model = args.model;
  if (args.dimensions) item.dimensions = args.dimensions;
  for (const c of COLLECTIONS) {
    const d = args.deltas[c];
    item[`${c}_state`] = 'PENDING';
    item[`${c}_delta_key`] = d.key;
    item[`${c}_sha256`] = d.sha256;
    item[`${c}_vectors`] = d.vectors;
  }
  return CompactionRunItem.parse(item);
}

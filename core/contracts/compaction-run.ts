import { z } from 'zod';
import { COLLECTIONS, type Collection } from './ids.js';
import { UUID_PATTERN } from './validation.js';

/**
 * Per-collection state of a CompactionRun (docs/adr/0009-wire-contracts.md). COMPLETED = every id is in a published
 * snapshot.
 */
export const RunState = z.enum(['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED']);
export type RunState = z.infer<typeof RunState>;

const pad = (n: number) => String(n).padStart(5, '0');

export function runKey(imageId: string, receiptId: number, runId: string): { PK: string; SK: string } {
  return { PK: `IMAGE#${imageId}`, SK: `RECEIPT#${pad(receiptId)}#COMPACTION_RUN#${runId}` };
}

export const COMPACTION_RUN_SK = /^RECEIPT#(\d{5})#COMPACTION_RUN#(.+)$/;

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Per-collection fields a run may carry, as `{c}_{field}`. `delta_prefix` is the original system's (seed-system
 * §8.1): a run its workers wrote during a cut-over names a Chroma-directory delta by prefix, with no digest and no
 * count, and stores absent errors and timestamps as NULL.
 */
const CollectionFields = {
  state: RunState.optional(),
  delta_key: z.string().min(1).optional(),
  sha256: z.string().regex(SHA256).optional(),
  vectors: z.number().int().min(0).optional(),
  delta_prefix: z.string().min(1).optional(),
  merged_vectors: z.number().int().min(0).optional(),
  error: z.string().nullish(),
  started_at: z.string().nullish(),
  finished_at: z.string().nullish(),
};
const COLLECTION_FIELDS = Object.keys(CollectionFields) as (keyof typeof CollectionFields)[];
/** The fields of CollectionFields once per collection, `{c}_{field}`, collection by collection. */
const perCollection = Object.fromEntries(
  COLLECTIONS.flatMap((c) => COLLECTION_FIELDS.map((f) => [`${c}_${f}`, CollectionFields[f]])),
) as { [F in keyof typeof CollectionFields as `${Collection}_${F}`]: (typeof CollectionFields)[F] };
/** A collection the run carries has every one of these — or, written by the original system, state and delta_prefix. */
const REQUIRED_COLLECTION_FIELDS = ['state', 'delta_key', 'sha256', 'vectors'] as const;
const ORIGINAL_COLLECTION_FIELDS = ['state', 'delta_prefix'] as const;

/**
 * The collections a run (or a raw ledger image of one) carries: those with any `{c}_…` field. A job whose
 * `spec.collections` leaves a collection out writes no field of it, no delta, and no message goes to its queue.
 */
export function runCollections(item: Record<string, unknown>): Collection[] {
  return COLLECTIONS.filter((c) => COLLECTION_FIELDS.some((f) => item[`${c}_${f}`] !== undefined));
}

/**
 * The CompactionRun item as stored in the single table; per collection `{c}_state`, `{c}_delta_key`, … The fields
 * of a collection are all there (the collection is part of the run) or none is (the job did not ask for it); at
 * least one collection is there.
 */
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
    /** NULL in a fresh run of the original system. */
    updated_at: z.string().nullish(),
    ...perCollection,
  })
  .loose()
  .superRefine((item, ctx) => {
    const present = runCollections(item);
    if (present.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `a CompactionRun carries at least one collection (${COLLECTIONS.map((c) => `${c}_state`).join(' or ')})`,
        path: [],
      });
    }
    for (const c of present) {
      const original = (item as Record<string, unknown>)[`${c}_delta_prefix`] !== undefined;
      for (const f of original ? ORIGINAL_COLLECTION_FIELDS : REQUIRED_COLLECTION_FIELDS) {
        if ((item as Record<string, unknown>)[`${c}_${f}`] === undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `the run carries ${c} but ${c}_${f} is missing (a collection has all of ${REQUIRED_COLLECTION_FIELDS.map((x) => `${c}_${x}`).join(', ')} or none)`,
            path: [`${c}_${f}`],
          });
        }
      }
    }
  });
export type CompactionRunItem = z.infer<typeof CompactionRunItem>;

/** The run a ledger item holds (checked), or undefined where there is no item. */
export function parseRunItem(item: Record<string, unknown> | undefined): CompactionRunItem | undefined {
  return item ? CompactionRunItem.parse(item) : undefined;
}

/**
 * One collection's view of a run, without the `{c}_` prefixes: an Arrow delta of this project (key, digest, count),
 * or a Chroma-directory delta of the original system, named by its prefix only.
 */
export type RunCollection = {
  state: RunState;
  mergedVectors?: number;
  error?: string;
} & (
  | { format: 'arrow'; deltaKey: string; sha256: string; vectors: number }
  | { format: 'chroma'; deltaPrefix: string }
);

/** Undefined when the run does not carry `c` (its job's `spec.collections` left it out): nothing to compact. */
export function runCollection(item: CompactionRunItem, c: Collection): RunCollection | undefined {
  if (!runCollections(item).includes(c)) return undefined;
  const f = (name: string) => (item as Record<string, unknown>)[`${c}_${name}`];
  const common = {
    state: f('state') as RunState,
    mergedVectors: f('merged_vectors') as number | undefined,
    error: (f('error') ?? undefined) as string | undefined,
  };
  const prefix = f('delta_prefix') as string | undefined;
  if (prefix !== undefined && f('delta_key') === undefined)
    return { ...common, format: 'chroma', deltaPrefix: prefix };
  return {
    ...common,
    format: 'arrow',
    deltaKey: f('delta_key') as string,
    sha256: f('sha256') as string,
    vectors: f('vectors') as number,
  };
}

export interface RunDelta {
  key: string;
  sha256: string;
  vectors: number;
}

/** Build a fresh run item with each collection of `deltas` PENDING; a collection not in `deltas` is left out. */
export function newCompactionRun(args: {
  runId: string;
  imageId: string;
  receiptId: number;
  jobName?: string;
  model?: string;
  dimensions?: number;
  deltas: Partial<Record<Collection, RunDelta>>;
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
    if (!d) continue;
    item[`${c}_state`] = 'PENDING';
    item[`${c}_delta_key`] = d.key;
    item[`${c}_sha256`] = d.sha256;
    item[`${c}_vectors`] = d.vectors;
  }
  return CompactionRunItem.parse(item);
}

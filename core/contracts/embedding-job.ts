import { z } from 'zod';
import { createHash } from 'node:crypto';
import { COLLECTIONS } from './ids.js';
import { APP_NAME, LABEL, MANAGED_BY } from './labels.js';
import { BucketName, ObjectKey } from './artifact-location.js';
import type { EmbedMessage } from './embed-message.js';
import { UUID_PATTERN } from './validation.js';

/**
 * EmbeddingJob custom resource (docs/adr/0009-wire-contracts.md). These zod schemas are the single source of truth: the
 * CRD YAML in `crds/` is generated from them (`npm run crds`) and a unit test fails when the two drift.
 */
export const GROUP = 'embedding.receipts.dev';
export const VERSION = 'v1alpha1';
export const KIND = 'EmbeddingJob';
export const PLURAL = 'embeddingjobs';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const Phase = z.enum(['Pending', 'Scheduled', 'Running', 'Succeeded', 'Failed']);
export type Phase = z.infer<typeof Phase>;

export const CompactionState = z.enum(['Pending', 'Completed', 'Failed']);
export type CompactionState = z.infer<typeof CompactionState>;

/**
 * An RFC 3339 timestamp as the Kubernetes API writes them (`format: date-time` in the CRD, so the apiserver refuses
 * anything else and clients know to parse it). zod only annotates here: the CRD does the validating.
 */
const Timestamp = z.string().meta({ format: 'date-time' });

export const EmbeddingJobSpec = z.object({
  imageId: z.string().regex(new RegExp(UUID_PATTERN)).describe('Image UUID of the receipt.'),
  receiptId: z.number().int().min(1).describe('Receipt number within the image (>= 1).'),
  artifactsBucket: BucketName.describe('Bucket holding the NDJSON files (a plain bucket name, no ARN).'),
  linesKey: ObjectKey.describe('Key of lines.ndjson (relative, no "." or ".." segments).'),
  wordsKey: ObjectKey.describe('Key of words.ndjson (relative, no "." or ".." segments).'),
  priority: z.number().int().min(0).max(1000).default(0).describe('Higher runs first.'),
  collections: z
    .array(z.enum(COLLECTIONS))
    .min(1)
    .max(2)
    .default(['lines', 'words'])
    .describe('Collections to embed into.'),
  model: z.string().min(1).optional().describe('Embedding model; the worker default when absent.'),
  source: z.enum(['sqs', 'manual']).default('manual').describe('sqs when created by the controller.'),
});
export type EmbeddingJobSpec = z.infer<typeof EmbeddingJobSpec>;

/** metav1.Condition */
export const Condition = z.object({
  type: z.string().min(1),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().min(1),
  message: z.string(),
  lastTransitionTime: Timestamp,
  observedGeneration: z.number().int().min(0).optional(),
});
export type Condition = z.infer<typeof Condition>;

export const JobResult = z.object({
  runId: z.string(),
  lines: z.number().int().min(0).describe('Line rows read.'),
  rows: z.number().int().min(0).describe('Visual rows embedded into the lines collection.'),
  words: z.number().int().min(0).describe('Words embedded into the words collection.'),
  linesDeltaKey: z.string().optional(),
  wordsDeltaKey: z.string().optional(),
  merchant: z.string().optional(),
  merchantReason: z.string().optional().describe('How the merchant was resolved, or why not.'),
  durationMs: z.number().int().min(0).optional(),
});
export type JobResult = z.infer<typeof JobResult>;

/**
 * What a worker reports for one EmbeddingJob of its batch (controller/README.md): the worker merge-patches
 * `status.report` (and `status.result` on success) through the status subresource; the controller turns it into
 * phase and conditions. `workerJob` names the batch/v1 Job that produced the report.
 */
export const WorkerReport = z.object({
  workerJob: z.string().min(1),
  outcome: z.enum(['Succeeded', 'Failed']),
  reason: z
    .enum(['BadInput', 'SourceMissing', 'Transient'])
    .optional()
    .describe('Why it failed (Failed only).'),
  message: z.string().optional(),
  reportedAt: Timestamp.optional(),
});
export type WorkerReport = z.infer<typeof WorkerReport>;

export const EmbeddingJobStatus = z.object({
  phase: Phase.optional(),
  observedGeneration: z.number().int().min(0).optional(),
  // One condition per type (metav1.Condition's contract): a map list lets server-side apply merge them by type.
  conditions: z
    .array(Condition)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
    .optional(),
  attempts: z.number().int().min(0).optional(),
  workerJob: z.string().optional(),
  startTime: Timestamp.optional(),
  completionTime: Timestamp.optional(),
  nextAttemptTime: Timestamp.optional(),
  result: JobResult.optional(),
  report: WorkerReport.optional(),
  compaction: z.object({ lines: CompactionState.optional(), words: CompactionState.optional() }).optional(),
  message: z.string().optional(),
});
export type EmbeddingJobStatus = z.infer<typeof EmbeddingJobStatus>;

export interface EmbeddingJob {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: EmbeddingJobSpec;
  status?: EmbeddingJobStatus;
}

/** Deterministic name: the same payload always maps to the same EmbeddingJob (redelivery creates nothing new). */
export function embeddingJobName(
  m: Pick<EmbedMessage, 'image_id' | 'receipt_id' | 'artifacts_bucket' | 'lines_key' | 'words_key'>,
): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([m.image_id, m.receipt_id, m.artifacts_bucket, m.lines_key, m.words_key]))
    .digest('hex')
    .slice(0, 8);
  return `ej-${m.image_id.slice(0, 8).toLowerCase()}-${m.receipt_id}-${hash}`;
}

export function specFromMessage(m: EmbedMessage, source: 'sqs' | 'manual' = 'sqs'): EmbeddingJobSpec {
  return EmbeddingJobSpec.parse({
    imageId: m.image_id,
    receiptId: m.receipt_id,
    artifactsBucket: m.artifacts_bucket,
    linesKey: m.lines_key,
    wordsKey: m.words_key,
    source,
  });
}

export function newEmbeddingJob(
  m: EmbedMessage,
  namespace: string,
  source: 'sqs' | 'manual' = 'sqs',
): EmbeddingJob {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: embeddingJobName(m),
      namespace,
      labels: {
        [LABEL.name]: APP_NAME,
        [LABEL.managedBy]: MANAGED_BY.controller,
        [`${GROUP}/image-id`]: m.image_id.toLowerCase(),
      },
    },
    spec: specFromMessage(m, source),
  };
}

import { z } from 'zod';
import { CHROMA_MOUNT_PATH, DEFAULT_METRICS_PORT, ENV, LEASE_NAMES, type Env } from './env.js';
import { definedOnly, envVar, parseEnv } from './parse.js';

/** Compactor tuning variables: all optional (defaults in compactor/config.ts DEFAULT_CONFIG); seconds become ms. */
const Tuning = z.object({
  [ENV.COMPACTOR_BATCH_SIZE]: envVar.number.optional(),
  [ENV.COMPACTOR_BATCH_WINDOW_MS]: envVar.number.optional(),
  [ENV.COMPACTOR_PUBLISH_HOLD_MS]: envVar.number.optional(),
  [ENV.COMPACTOR_WAIT_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_VISIBILITY_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_MAX_RECEIVES]: envVar.number.optional(),
  [ENV.COMPACTOR_KEEP_VERSIONS]: envVar.number.optional(),
  [ENV.COMPACTOR_GRACE_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_SEAL_VECTORS]: envVar.number.optional(),
  [ENV.COMPACTOR_MERGE_RATIO]: envVar.number.optional(),
  [ENV.COMPACTOR_S3_EVERY_PUBLISHES]: envVar.number.optional(),
  [ENV.COMPACTOR_S3_EVERY_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_S3_KEEP]: envVar.number.optional(),
  [ENV.EMBEDDING_DIMENSIONS]: envVar.number.optional(),
  [ENV.COMPACTOR_EXIT_WHEN_IDLE_MS]: envVar.number.optional(),
  [ENV.COMPACTOR_MAX_GROUP_BYTES]: envVar.number.optional(),
  [ENV.COMPACTOR_STALL_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_CRASH_LIMIT]: envVar.number.optional(),
  [ENV.COMPACTOR_CHROMA_TIMEOUT_SECONDS]: envVar.number.optional(),
  [ENV.COMPACTOR_CHROMA_DELTA_MAX_ARCHIVE_BYTES]: envVar.positive.optional(),
  [ENV.COMPACTOR_CHROMA_DELTA_MAX_BYTES]: envVar.positive.optional(),
  [ENV.COMPACTOR_CHROMA_DELTA_MAX_MEMBERS]: envVar.positive.optional(),
});

function tuningOf(e: z.output<typeof Tuning>) {
  const ms = (s: number | undefined) => (s === undefined ? undefined : s * 1000);
  return definedOnly({
    batchSize: e.COMPACTOR_BATCH_SIZE,
    batchWindowMs: e.COMPACTOR_BATCH_WINDOW_MS,
    publishHoldMs: e.COMPACTOR_PUBLISH_HOLD_MS,
    waitSeconds: e.COMPACTOR_WAIT_SECONDS,
    visibilitySeconds: e.COMPACTOR_VISIBILITY_SECONDS,
    maxReceives: e.COMPACTOR_MAX_RECEIVES,
    keepVersions: e.COMPACTOR_KEEP_VERSIONS,
    graceMs: ms(e.COMPACTOR_GRACE_SECONDS),
    sealVectors: e.COMPACTOR_SEAL_VECTORS,
    mergeRatio: e.COMPACTOR_MERGE_RATIO,
    s3EveryPublishes: e.COMPACTOR_S3_EVERY_PUBLISHES,
    s3EverySeconds: e.COMPACTOR_S3_EVERY_SECONDS,
    s3Keep: e.COMPACTOR_S3_KEEP,
    dimensions: e.EMBEDDING_DIMENSIONS,
    exitWhenIdleMs: e.COMPACTOR_EXIT_WHEN_IDLE_MS,
    maxGroupBytes: e.COMPACTOR_MAX_GROUP_BYTES,
    stallMs: ms(e.COMPACTOR_STALL_SECONDS),
    crashLimit: e.COMPACTOR_CRASH_LIMIT,
    chromaTimeoutMs: ms(e.COMPACTOR_CHROMA_TIMEOUT_SECONDS),
    chromaDeltaMaxArchiveBytes: e.COMPACTOR_CHROMA_DELTA_MAX_ARCHIVE_BYTES,
    chromaDeltaMaxBytes: e.COMPACTOR_CHROMA_DELTA_MAX_BYTES,
    chromaDeltaMaxMembers: e.COMPACTOR_CHROMA_DELTA_MAX_MEMBERS,
  });
}
export type CompactorTuning = ReturnType<typeof tuningOf>;

/** The compactor's lease: a file (`LEASE_FILE`: local mode, tests) or the Lease LEASE_NAME in NAMESPACE. */
const LeaseEnv = z.object({
  [ENV.LEASE_FILE]: envVar.optional,
  [ENV.NAMESPACE]: envVar.orDefault('default'),
  [ENV.LEASE_NAME]: envVar.orDefault(LEASE_NAMES.compactor),
  [ENV.POD_NAME]: envVar.optional,
  [ENV.LEASE_DURATION_MS]: envVar.number.default(15_000),
});

function leaseOf(e: z.output<typeof LeaseEnv>) {
  return {
    file: e.LEASE_FILE,
    namespace: e.NAMESPACE,
    name: e.LEASE_NAME,
    /** Unset: the caller's host-and-pid identity. */
    identity: e.POD_NAME,
    durationMs: e.LEASE_DURATION_MS,
  };
}
export type CompactorLeaseEnv = ReturnType<typeof leaseOf>;

/** Everything the cloud compactor reads besides the AWS settings (core/config/aws.ts). */
const CompactorEnv = z.object({
  [ENV.LINES_QUEUE_URL]: envVar.required,
  [ENV.WORDS_QUEUE_URL]: envVar.required,
  [ENV.COMPACTION_DLQ_URL]: envVar.required,
  [ENV.LEDGER_TABLE]: envVar.required,
  [ENV.VECTORS_BUCKET]: envVar.required,
  [ENV.CHROMA_ROOT]: envVar.orDefault(CHROMA_MOUNT_PATH),
  /** Local scratch for working copies; default a directory under the OS temp dir. */
  [ENV.COMPACTOR_WORK_DIR]: envVar.optional,
  [ENV.METRICS_PORT]: envVar.port.default(DEFAULT_METRICS_PORT),
});

function compactorOf(e: z.output<typeof CompactorEnv>) {
  return {
    queues: { lines: e.LINES_QUEUE_URL, words: e.WORDS_QUEUE_URL, dlq: e.COMPACTION_DLQ_URL },
    ledgerTable: e.LEDGER_TABLE,
    vectorsBucket: e.VECTORS_BUCKET,
    chromaRoot: e.CHROMA_ROOT,
    workDir: e.COMPACTOR_WORK_DIR,
    metricsPort: e.METRICS_PORT,
  };
}
export type CompactorEnv = ReturnType<typeof compactorOf>;

export const parseCompactorTuning = (env: Env): CompactorTuning =>
  tuningOf(parseEnv(Tuning, env, 'compactor tuning'));
export const parseCompactorLease = (env: Env): CompactorLeaseEnv =>
  leaseOf(parseEnv(LeaseEnv, env, 'compactor lease'));
export const parseCompactorEnv = (env: Env): CompactorEnv =>
  compactorOf(parseEnv(CompactorEnv, env, 'compactor configuration'));

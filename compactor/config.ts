import type { Collection } from '../core/contracts/ids.js';
import type { FencedLease } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Queue } from '../core/ports/queue.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import type { CompactorMetrics } from './metrics.js';
import type { RemoteChroma } from './remote.js';

/** Compactor tuning (env: core/config/compactor.ts; README "Environment"). */
export interface CompactorConfig {
  /** Most messages per batch and collection. */
  batchSize: number;
  /** After the first message arrives, keep receiving for up to this long to fill the batch. */
  batchWindowMs: number;
  /** Long-poll wait of the first receive. */
  waitSeconds: number;
  /** Visibility timeout of received messages (extended while a batch is in progress). */
  visibilitySeconds: number;
  /** A message whose processing failed and that was received this many times goes to the DLQ with the reason. */
  maxReceives: number;
  /** Versions kept on the volume (besides CURRENT) and their minimum age before removal. */
  keepVersions: number;
  graceMs: number;
  /**
   * After a publish, the hot segment is sealed (folded into a new immutable segment shared by every later version)
   * once it holds this many vectors (docs/adr/0012-immutable-segments.md).
   */
  sealVectors: number;
  /**
   * The merge policy (compactor/merge-policy.ts): the hot segment is sealed once it also holds this fraction of the
   * largest sealed segment's live records, and every seal is merged into the largest segment in the background; a
   * segment with this fraction tombstoned is rewritten without them. Bytes written per changed vector ≤ 2 + 1/ratio.
   */
  mergeRatio: number;
  /**
   * On a clean shutdown, prune once more with this grace period instead of `graceMs` (unset: no prune at shutdown).
   * Local mode: the versions published in the run's last minute would otherwise stay until the next run.
   */
  shutdownGraceMs?: number;
  /** S3 snapshot after this many publishes or seconds (and on shutdown); newest K kept there. */
  s3EveryPublishes: number;
  s3EverySeconds: number;
  s3Keep: number;
  /** Expected vector dimension; when unset, the collection's own (or the first delta's). */
  dimensions?: number;
  /**
   * After a batch is merged, keep merging the batches already waiting in the queue for up to this long before one
   * publish covers them all (0 = publish after every batch). Fewer publishes under a backlog; a run waits at most this
   * much longer for COMPLETED. One value for both lanes, or one per collection (a missing collection: 0).
   */
  publishHoldMs: number | Partial<Record<Collection, number>>;
  /**
   * Stop (exit 0) when both queues were empty this long and no failed message this process rescheduled is still due
   * back; unset = run until signalled.
   */
  exitWhenIdleMs?: number;
  /**
   * Most delta bytes (as the runs declare them: vectors × dimensions × 4, plus documents) loaded at once: a batch's
   * runs are merged in groups below this, so 1,000 word deltas never sit in memory together.
   */
  maxGroupBytes: number;
  /**
   * A batch that makes no progress for this long is stalled: /healthz fails (the kubelet restarts the pod) and the
   * visibility heartbeat stops, so its messages return to the queue.
   */
  stallMs: number;
  /** A message in whose batch the process died this many times while it was processed alone is dead-lettered. */
  crashLimit: number;
  /** Bound on each request to a working copy's Chroma server. */
  chromaTimeoutMs: number;
  /**
   * Limits on a delta of the original system (a Chroma directory as `delta.tar.gz` or file by file; README "Mixed
   * fleet"): the compressed archive, the bytes it unpacks to (or the files' total), and its members.
   */
  chromaDeltaMaxArchiveBytes: number;
  chromaDeltaMaxBytes: number;
  chromaDeltaMaxMembers: number;
}

export const DEFAULT_CONFIG: CompactorConfig = {
  batchSize: 1000,
  batchWindowMs: 2000,
  publishHoldMs: 0,
  waitSeconds: 20,
  // Short, and kept alive by a heartbeat every half of it while a batch is held (keepInvisible): a compactor that
  // is killed gives its messages back within a minute, not fifteen.
  visibilitySeconds: 60,
  maxReceives: 20,
  keepVersions: 5,
  graceMs: 10 * 60_000,
  // Below the 10,000 vectors Chroma preallocates in a new HNSW index (62.8 MB at 1536 dims): the hot segment is
  // sealed before its index first grows, so every publish copies at most one preallocated index.
  sealVectors: 8000,
  mergeRatio: 0.05,
  s3EveryPublishes: 10,
  s3EverySeconds: 300,
  s3Keep: 4,
  maxGroupBytes: 256 * 2 ** 20,
  stallMs: 10 * 60_000,
  crashLimit: 2,
  chromaTimeoutMs: 60_000,
  // A receipt's Chroma delta is ~3 MB compressed and ~70 MB unpacked (HNSW files are preallocated), in 6-10 members.
  chromaDeltaMaxArchiveBytes: 256 * 2 ** 20,
  chromaDeltaMaxBytes: 2 * 2 ** 30,
  chromaDeltaMaxMembers: 1000,
};

export interface CompactorDeps {
  queues: Record<Collection, Queue>;
  ledger: Ledger;
  objects: ObjectStore;
  bucket: string;
  lease: FencedLease;
  /**
   * Shared volume root (`{root}/{collection}/versions/…`, `CURRENT`). In remote mode no volume: a local directory
   * for the crash record only.
   */
  root: string;
  /** Remote mode (docs/adr/0013-remote-vector-store.md): merge into this Chroma server; no versions, no S3 mirror. */
  remote?: RemoteChroma;
  /** Local scratch for the working copies (never on the shared volume). */
  workRoot: string;
  log: Logger;
  config?: Partial<CompactorConfig>;
  /** Where its metrics go (default: a private registry). */
  metrics?: CompactorMetrics;
  /** Fault injection (core/testing/crash-points.ts): called at named steps and when a run's delta loads. */
  hooks?: CrashHooks;
}

import { COLLECTIONS, type Collection } from '../core/contracts/ids.js';
import { PipelineError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { PlaceLookup } from '../core/merchant/place-lookup.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { Ledger } from '../core/ports/ledger.js';
import type { LinesIndexSource } from '../core/ports/lines-index.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { BatchLinesIndex } from './batch-lines-index.js';
import type { Gate, PhaseTimer } from './phase-timer.js';
import { runIdFor } from './run-id.js';
import type { Reporter, WorkItem } from './work-item.js';

export interface WorkerDeps {
  store: ObjectStore;
  ledger: Ledger;
  embedder: Embedder;
  /** Embedder for a job whose spec names another model; without it such a job fails as BadInput. */
  embedderFor?: (model: string) => Embedder;
  vectorsBucket: string;
  /**
   * Buckets an item may read (ARTIFACTS_BUCKET + ARTIFACTS_BUCKETS_ALLOWED); ingest checks this too, the worker again
   * because an EmbeddingJob can be created by hand. Unset (local mode): only the bucket's and keys' shape is checked.
   */
  artifactBuckets?: readonly string[];
  /** The live `lines` snapshot for merchant resolution; undefined disables resolution. */
  linesIndex?: LinesIndexSource;
  placeLookup?: PlaceLookup;
  reporter: Reporter;
  log: Logger;
  /** Receipts reading + validating at once. Default 16. */
  jobConcurrency?: number;
  /** Receipts writing their deltas and CompactionRun at once. Default: `jobConcurrency`. */
  writeConcurrency?: number;
  /** Read word labels from the ledger for label metadata. Default true. */
  readLabels?: boolean;
  /** Stop starting new items (already running ones finish). */
  signal?: AbortSignal;
  now?: () => Date;
}

/** What the items of one batch share. */
export interface BatchContext {
  deps: WorkerDeps;
  timer: PhaseTimer;
  linesIndex: BatchLinesIndex;
  /** Bounds on the receipts reading (`jobConcurrency`) and writing (`writeConcurrency`) at once. */
  gates: { read: Gate; write: Gate };
}

/** One item's own facts, decided before any I/O. */
export interface ItemContext {
  item: WorkItem;
  runId: string;
  ids: { imageId: string; receiptId: number };
  /** The collections the job asked for (default: all). */
  collections: ReadonlySet<Collection>;
  embedder: Embedder;
  log: Logger;
  /** performance.now() when the item started: its JobResult's durationMs counts from here. */
  startedAt: number;
}

/** Throws BadInput when the job names a model this worker cannot embed with. */
export function itemContext(deps: WorkerDeps, item: WorkItem, log: Logger): ItemContext {
  const startedAt = performance.now();
  const { spec } = item;
  return {
    item,
    runId: runIdFor(item, item.attemptKey),
    ids: { imageId: spec.imageId, receiptId: spec.receiptId },
    collections: new Set<Collection>(spec.collections ?? COLLECTIONS),
    embedder: pickEmbedder(deps, spec.model),
    log,
    startedAt,
  };
}

function pickEmbedder(deps: WorkerDeps, model: string | undefined): Embedder {
  if (!model || model === deps.embedder.model) return deps.embedder;
  if (deps.embedderFor) return deps.embedderFor(model);
  throw new PipelineError(
    'BadInput',
    `model ${model} is not available in this worker (it embeds with ${deps.embedder.model})`,
  );
}

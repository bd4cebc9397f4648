import type { CompactionRunItem, RunState } from '../contracts/compaction-run.js';
import type { Collection } from '../contracts/ids.js';

/**
 * The single-table ledger (DynamoDB in the cloud, SQLite locally): CompactionRun rows plus the receipt entities the
 * compactor reads (labels, places, sections, lines/words). Items are plain attribute maps keyed by PK/SK.
 */
export type Item = Record<string, unknown> & { PK: string; SK: string };

/** The ids that name one CompactionRun (runKey turns them into its PK/SK). */
export interface RunIds {
  imageId: string;
  receiptId: number;
  runId: string;
}

export interface CollectionOutcome {
  state: Extract<RunState, 'PROCESSING' | 'COMPLETED' | 'FAILED'>;
  mergedVectors?: number;
  error?: string;
}

export interface Ledger {
  /** Creates the run if absent; an existing run with the same key is left untouched (returns false). */
  putRunIfAbsent(run: CompactionRunItem): Promise<boolean>;
  getRun(imageId: string, receiptId: number, runId: string): Promise<CompactionRunItem | undefined>;
  /** Updates one collection's fields only, so lines and words never overwrite each other. */
  setRunCollection(key: RunIds, collection: Collection, outcome: CollectionOutcome): Promise<void>;
  putItem(item: Item): Promise<void>;
  deleteItem(key: { PK: string; SK: string }): Promise<void>;
  getItem(key: { PK: string; SK: string }): Promise<Item | undefined>;
  /** Every item of a partition whose SK starts with the prefix, in SK order. */
  query(pk: string, skPrefix: string): Promise<Item[]>;
  /**
   * CompactionRun rows with at least one collection still PENDING and `created_at` before `olderThan`, at most
   * `limit` of them (oldest first where the store can order; the DynamoDB adapter scans, see there). The stream
   * processor's sweeper re-announces them after a stream gap.
   */
  pendingRuns(
    olderThan: Date,
    limit: number,
    options?: { signal?: AbortSignal },
  ): Promise<CompactionRunItem[]>;
}

/** One change of the ledger, in commit order per key (DynamoDB Streams record / SQLite change row). */
export interface ChangeRecord {
  id: string;
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  keys: { PK: string; SK: string };
  oldImage?: Item;
  newImage?: Item;
  region?: string;
}

/** An ordered change feed with durable per-shard checkpoints. */
export interface ChangeFeed {
  /**
   * Reads the next changes after the stored checkpoint. `commit` must be called after they were handled to
   * advance the checkpoint durably; a crash before commit replays them.
   */
  next(options?: {
    limit?: number;
    signal?: AbortSignal;
  }): Promise<{ records: ChangeRecord[]; commit(): Promise<void> }>;
  close(): Promise<void>;
}

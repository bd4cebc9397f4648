import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { CompactionRunItem, parseRunItem, runKey } from '../contracts/compaction-run.js';
import type { Collection } from '../contracts/ids.js';
import { PipelineError } from '../errors.js';
import type { ChangeFeed, ChangeRecord, CollectionOutcome, Item, Ledger, RunIds } from '../ports/ledger.js';
import { immediate, openDatabase, type Db } from './sqlite.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_items (
  pk TEXT NOT NULL,
  sk TEXT NOT NULL,
  item TEXT NOT NULL,
  PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_name TEXT NOT NULL,
  pk TEXT NOT NULL,
  sk TEXT NOT NULL,
  old_image TEXT,
  new_image TEXT,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
  consumer TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

/** A conditional write whose condition did not hold (DynamoDB's ConditionalCheckFailedException). */
export class ConditionFailedError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('InvalidConfig', message, context);
    this.name = 'ConditionFailedError';
  }
}

export const LOCAL_REGION = 'local';

/**
 * The Ledger port on SQLite, standing in for the DynamoDB single table. Every write and its change record are one
 * transaction, so the change log (the DynamoDB Streams stand-in, NEW_AND_OLD_IMAGES) has exactly one record per
 * effective write, in commit order; writes that change nothing record nothing, as with Streams.
 */
export class SqliteLedger implements Ledger {
  constructor(readonly db: Db) {
    db.exec(SCHEMA);
  }

  static open(path: string): SqliteLedger {
    return new SqliteLedger(openDatabase(path));
  }

  async putRunIfAbsent(run: CompactionRunItem): Promise<boolean> {
    const item = CompactionRunItem.parse(run) as Item;
    return immediate(this.db, () => {
      if (this.read(item)) return false;
      this.write(item, undefined, item);
      return true;
    });
  }

  async getRun(imageId: string, receiptId: number, runId: string): Promise<CompactionRunItem | undefined> {
    return parseRunItem(await this.getItem(runKey(imageId, receiptId, runId)));
  }

  /**
   * Same conditions as the DynamoDB adapter: only this collection's fields change; a COMPLETED collection never
   * moves back (such an update is skipped silently); COMPLETED on a missing run throws ConditionFailedError.
   */
  async setRunCollection(key: RunIds, collection: Collection, outcome: CollectionOutcome): Promise<void> {
    const k = runKey(key.imageId, key.receiptId, key.runId);
    immediate(this.db, () => {
      const old = this.read(k);
      const conditionHolds =
        old !== undefined && (outcome.state === 'COMPLETED' || old[`${collection}_state`] !== 'COMPLETED');
      if (!conditionHolds) {
        if (outcome.state !== 'COMPLETED') return;
        throw new ConditionFailedError(`run ${key.runId} of ${k.PK} does not exist`, { ...k, collection });
      }
      const now = new Date().toISOString();
      const next: Item = { ...old, [`${collection}_state`]: outcome.state, updated_at: now };
      next[`${collection}_${outcome.state === 'PROCESSING' ? 'started_at' : 'finished_at'}`] = now;
      if (outcome.mergedVectors !== undefined) next[`${collection}_merged_vectors`] = outcome.mergedVectors;
      if (outcome.error !== undefined) next[`${collection}_error`] = outcome.error;
      this.write(k, old, next);
    });
  }

  async putItem(item: Item): Promise<void> {
    immediate(this.db, () => this.write(item, this.read(item), stripUndefined(item)));
  }

  async deleteItem(key: { PK: string; SK: string }): Promise<void> {
    immediate(this.db, () => this.write(key, this.read(key), undefined));
  }

  async getItem(key: { PK: string; SK: string }): Promise<Item | undefined> {
    return this.read(key);
  }

  async query(pk: string, skPrefix: string): Promise<Item[]> {
    // Range on the primary key instead of LIKE, so `%`/`_` in the prefix mean themselves.
    return this.db
      .prepare<[string, string, string], { item: string }>(
        'SELECT item FROM ledger_items WHERE pk = ? AND sk >= ? AND sk < ? ORDER BY sk',
      )
      .all(pk, skPrefix, skPrefix + '\u{10ffff}')
      .map((r) => JSON.parse(r.item) as Item)
      .filter((i) => i.SK.startsWith(skPrefix));
  }

  /**
   * PENDING runs created before `olderThan`, oldest first. The change log is not involved: this reads the current
   * rows (a full pass over the run rows, found by their SK; fine at local sizes).
   */
  async pendingRuns(olderThan: Date, limit: number): Promise<CompactionRunItem[]> {
    const rows = this.db
      .prepare<[string, number], { item: string }>(
        `SELECT item FROM ledger_items
          WHERE sk LIKE 'RECEIPT#%#COMPACTION_RUN#%'
            AND json_extract(item, '$.TYPE') = 'COMPACTION_RUN'
            AND json_extract(item, '$.created_at') < ?
            AND (json_extract(item, '$.lines_state') = 'PENDING' OR json_extract(item, '$.words_state') = 'PENDING')
          ORDER BY json_extract(item, '$.created_at'), pk, sk
          LIMIT ?`,
      )
      .all(olderThan.toISOString(), Math.max(0, limit));
    return rows.flatMap((r) => {
      const parsed = CompactionRunItem.safeParse(JSON.parse(r.item));
      return parsed.success ? [parsed.data] : [];
    });
  }

  /** Every item whose PK starts with the prefix (a Scan stand-in for the local CLI). */
  scan(pkPrefix = '', skContains?: string): Item[] {
    return this.db
      .prepare<[string, string], { item: string }>(
        'SELECT item FROM ledger_items WHERE pk >= ? AND pk < ? ORDER BY pk, sk',
      )
      .all(pkPrefix, pkPrefix + '\u{10ffff}')
      .map((r) => JSON.parse(r.item) as Item)
      .filter((i) => skContains === undefined || i.SK.includes(skContains));
  }

  /** The change feed for one consumer; each consumer has its own durable checkpoint. */
  changeFeed(consumer: string, options?: SqliteChangeFeedOptions): SqliteChangeFeed {
    return new SqliteChangeFeed(this.db, consumer, options);
  }

  private read(key: { PK: string; SK: string }): Item | undefined {
    const row = this.db
      .prepare<[string, string], { item: string }>('SELECT item FROM ledger_items WHERE pk = ? AND sk = ?')
      .get(key.PK, key.SK);
    return row ? (JSON.parse(row.item) as Item) : undefined;
  }

  /** Call inside a transaction: applies one write and appends its change record, unless it changes nothing. */
  private write(key: { PK: string; SK: string }, old: Item | undefined, next: Item | undefined): void {
    if (old === undefined && next === undefined) return;
    if (old !== undefined && next !== undefined && isDeepStrictEqual(old, next)) return;
    if (next === undefined) {
      this.db.prepare('DELETE FROM ledger_items WHERE pk = ? AND sk = ?').run(key.PK, key.SK);
    } else {
      this.db
        .prepare(
          'INSERT INTO ledger_items (pk, sk, item) VALUES (?, ?, ?) ON CONFLICT (pk, sk) DO UPDATE SET item = excluded.item',
        )
        .run(key.PK, key.SK, JSON.stringify(next));
    }
    const eventName = old === undefined ? 'INSERT' : next === undefined ? 'REMOVE' : 'MODIFY';
    this.db
      .prepare(
        'INSERT INTO ledger_changes (event_name, pk, sk, old_image, new_image, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        eventName,
        key.PK,
        key.SK,
        old ? JSON.stringify(old) : null,
        next ? JSON.stringify(next) : null,
        Date.now(),
      );
  }
}

export interface SqliteChangeFeedOptions {
  /** How long an empty `next` waits for new changes before it returns no records, ms. */
  waitMs?: number;
  pollMs?: number;
}

interface ChangeRow {
  seq: number;
  event_name: ChangeRecord['eventName'];
  pk: string;
  sk: string;
  old_image: string | null;
  new_image: string | null;
}

/**
 * The ordered change log read as a feed (one shard, commit order). `next` continues after what this instance
 * already returned; `commit` stores the checkpoint durably, and a new instance (a restarted process) resumes from
 * it, so whatever was read but not committed before a crash is read again.
 */
export class SqliteChangeFeed implements ChangeFeed {
  private cursor: number;
  private closed = false;

  constructor(
    private readonly db: Db,
    readonly consumer: string,
    private readonly options: SqliteChangeFeedOptions = {},
  ) {
    db.exec(SCHEMA);
    this.cursor = this.checkpoint();
  }

  /** The last committed sequence number of this consumer (0 before the first commit). */
  checkpoint(): number {
    return (
      this.db
        .prepare<[string], { seq: number }>('SELECT seq FROM ledger_checkpoints WHERE consumer = ?')
        .get(this.consumer)?.seq ?? 0
    );
  }

  /** Changes after this consumer's checkpoint that are not yet committed (its lag). */
  pending(): number {
    return (
      this.db
        .prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM ledger_changes WHERE seq > ?')
        .get(this.checkpoint())?.n ?? 0
    );
  }

  async next(
    options: { limit?: number; signal?: AbortSignal } = {},
  ): Promise<{ records: ChangeRecord[]; commit(): Promise<void> }> {
    if (this.closed) throw new Error(`change feed ${this.consumer} is closed`);
    const limit = Math.max(1, options.limit ?? 100);
    const deadline = Date.now() + (this.options.waitMs ?? 0);
    let rows = this.read(limit);
    while (rows.length === 0 && Date.now() < deadline && !options.signal?.aborted) {
      try {
        await sleep(Math.min(this.options.pollMs ?? 100, deadline - Date.now()), undefined, {
          signal: options.signal,
        });
      } catch {
        break;
      }
      rows = this.read(limit);
    }
    const last = rows.at(-1)?.seq;
    if (last !== undefined) this.cursor = last;
    return {
      records: rows.map(toRecord),
      commit: async () => {
        if (last === undefined) return;
        // Checkpoints only move forward, even if batches are committed out of order.
        this.db
          .prepare(
            `INSERT INTO ledger_checkpoints (consumer, seq, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, excluded.seq), updated_at = excluded.updated_at`,
          )
          .run(this.consumer, last, Date.now());
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private read(limit: number): ChangeRow[] {
    return this.db
      .prepare<[number, number], ChangeRow>('SELECT * FROM ledger_changes WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(this.cursor, limit);
  }
}

function toRecord(row: ChangeRow): ChangeRecord {
  return {
    id: String(row.seq).padStart(20, '0'),
    eventName: row.event_name,
    keys: { PK: row.pk, SK: row.sk },
    ...(row.old_image ? { oldImage: JSON.parse(row.old_image) as Item } : {}),
    ...(row.new_image ? { newImage: JSON.parse(row.new_image) as Item } : {}),
    region: LOCAL_REGION,
  };
}

function stripUndefined(item: Item): Item {
  return JSON.parse(JSON.stringify(item)) as Item;
}

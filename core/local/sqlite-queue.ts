import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutgoingMessage, Queue, QueueMessage, ReceiveOptions } from '../ports/queue.js';
import { immediate, openDatabase, type Db } from './sqlite.js';

export interface SqliteQueueOptions {
  /** Default visibility timeout of a receive, seconds (SQS default 30). */
  visibilitySeconds?: number;
  /**
   * Redrive policy: a message received this many times without being deleted goes to the dead-letter table with
   * the reason `maxReceiveCount exceeded` instead of being delivered again (SQS `maxReceiveCount`).
   */
  maxReceiveCount?: number;
  /** How often an empty long poll looks again, ms. */
  pollMs?: number;
  /** Clock, ms since epoch (tests move time instead of sleeping). */
  now?: () => number;
}

export interface DeadLetter {
  id: string;
  queue: string;
  body: string;
  attributes: Record<string, string>;
  reason: string;
  receiveCount: number;
  sentAt: number;
  deadAt: number;
}

/** A receipt handle that is no longer the message's current one (it was redelivered, or deleted). */
export class StaleHandleError extends Error {
  constructor(queue: string, handle: string) {
    super(`queue ${queue}: receipt handle ${handle} is not the current delivery of an in-flight message`);
    this.name = 'StaleHandleError';
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  attributes TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  receive_count INTEGER NOT NULL DEFAULT 0,
  handle TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_handle ON queue_messages (handle);
CREATE TABLE IF NOT EXISTS queue_dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  attributes TEXT NOT NULL,
  reason TEXT NOT NULL,
  receive_count INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  dead_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_dead_letters_queue ON queue_dead_letters (queue, seq);
`;

interface Row {
  seq: number;
  id: string;
  queue: string;
  body: string;
  attributes: string;
  sent_at: number;
  visible_at: number;
  receive_count: number;
  handle: string | null;
}

/**
 * The Queue port on SQLite, standing in for SQS in local mode. Durable (a sent message survives any crash once
 * `send` resolved), at-least-once: a received message is hidden for its visibility timeout and comes back unless
 * it is deleted. Several processes may share one file; a receive is one `BEGIN IMMEDIATE` transaction, so two
 * receivers never get the same delivery. Many named queues live in one file.
 */
export class SqliteQueue implements Queue {
  private readonly visibilitySeconds: number;
  private readonly maxReceiveCount: number;
  private readonly pollMs: number;
  private readonly now: () => number;

  constructor(
    readonly db: Db,
    readonly name: string,
    options: SqliteQueueOptions = {},
  ) {
    this.visibilitySeconds = options.visibilitySeconds ?? 30;
    this.maxReceiveCount = options.maxReceiveCount ?? 5;
    this.pollMs = options.pollMs ?? 100;
    this.now = options.now ?? Date.now;
    db.exec(SCHEMA);
  }

  static open(path: string, name: string, options?: SqliteQueueOptions): SqliteQueue {
    return new SqliteQueue(openDatabase(path), name, options);
  }

  async receive(options: ReceiveOptions = {}): Promise<QueueMessage[]> {
    const max = Math.max(1, options.maxMessages ?? 10);
    const visibilityMs = (options.visibilitySeconds ?? this.visibilitySeconds) * 1000;
    const deadline = this.now() + (options.waitSeconds ?? 0) * 1000;
    for (;;) {
      const got = this.receiveNow(max, visibilityMs);
      if (got.length > 0 || this.now() >= deadline || options.signal?.aborted) return got;
      try {
        await sleep(Math.min(this.pollMs, deadline - this.now()), undefined, { signal: options.signal });
      } catch {
        return []; // aborted: an empty receive, like a cancelled long poll
      }
    }
  }

  private receiveNow(max: number, visibilityMs: number): QueueMessage[] {
    return immediate(this.db, () => {
      const now = this.now();
      // Redrive first, so a poison message never reaches a consumer again.
      const poison = this.db
        .prepare<[string, number, number], Row>(
          'SELECT * FROM queue_messages WHERE queue = ? AND visible_at <= ? AND receive_count >= ? ORDER BY seq',
        )
        .all(this.name, now, this.maxReceiveCount);
      for (const row of poison) {
        this.moveToDeadLetters(
          row,
          `maxReceiveCount ${this.maxReceiveCount} exceeded: received ${row.receive_count} times, never deleted`,
          now,
        );
      }
      const rows = this.db
        .prepare<[string, number, number], Row>(
          'SELECT * FROM queue_messages WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?',
        )
        .all(this.name, now, max);
      const update = this.db.prepare<[string, number, number]>(
        'UPDATE queue_messages SET handle = ?, visible_at = ?, receive_count = receive_count + 1 WHERE seq = ?',
      );
      return rows.map((row) => {
        const handle = `${row.id}#${randomBytes(8).toString('hex')}`;
        update.run(handle, now + visibilityMs, row.seq);
        return {
          id: row.id,
          handle,
          body: row.body,
          attributes: JSON.parse(row.attributes) as Record<string, string>,
          receiveCount: row.receive_count + 1,
          sentAt: row.sent_at,
        };
      });
    });
  }

  async send(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const insert = this.db.prepare(
      'INSERT INTO queue_messages (id, queue, body, attributes, sent_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    immediate(this.db, () => {
      const now = this.now();
      for (const m of messages)
        insert.run(randomUUID(), this.name, m.body, JSON.stringify(m.attributes ?? {}), now, now);
    });
  }

  /** Deleting with a stale handle succeeds and deletes nothing, as in SQS: the newer delivery owns the message. */
  async delete(handle: string): Promise<void> {
    this.db.prepare('DELETE FROM queue_messages WHERE queue = ? AND handle = ?').run(this.name, handle);
  }

  /** Like `delete` for each handle, in one transaction. */
  async deleteBatch(handles: string[]): Promise<void> {
    if (handles.length === 0) return;
    const del = this.db.prepare('DELETE FROM queue_messages WHERE queue = ? AND handle = ?');
    immediate(this.db, () => {
      for (const h of handles) del.run(this.name, h);
    });
  }

  async changeVisibility(handle: string, seconds: number): Promise<void> {
    const res = this.db
      .prepare('UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND handle = ?')
      .run(this.now() + seconds * 1000, this.name, handle);
    if (res.changes === 0) throw new StaleHandleError(this.name, handle);
  }

  /**
   * Moves the delivery to the dead-letter table with its reason. A stale handle moves nothing: the message is
   * still in the queue, owned by its newer delivery, so it is neither lost nor dead-lettered twice.
   */
  async deadLetter(message: QueueMessage, reason: string): Promise<void> {
    immediate(this.db, () => {
      const row = this.db
        .prepare<[string, string], Row>('SELECT * FROM queue_messages WHERE queue = ? AND handle = ?')
        .get(this.name, message.handle);
      if (row) this.moveToDeadLetters(row, reason, this.now());
    });
  }

  private moveToDeadLetters(row: Row, reason: string, now: number): void {
    const attributes = {
      ...(JSON.parse(row.attributes) as Record<string, string>),
      dlq_reason: reason.slice(0, 1000) || 'unknown',
      dlq_source_queue: this.name,
      dlq_original_message_id: row.id,
      dlq_receive_count: String(row.receive_count),
    };
    this.db
      .prepare(
        `INSERT INTO queue_dead_letters (id, queue, body, attributes, reason, receive_count, sent_at, dead_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.id,
        this.name,
        row.body,
        JSON.stringify(attributes),
        attributes.dlq_reason,
        row.receive_count,
        row.sent_at,
        now,
      );
    this.db.prepare('DELETE FROM queue_messages WHERE seq = ?').run(row.seq);
  }

  async depth(): Promise<{ visible: number; inFlight: number }> {
    const row = this.db
      .prepare<[number, number, string], { visible: number | null; inFlight: number | null }>(
        `SELECT SUM(visible_at <= ?) AS visible, SUM(visible_at > ?) AS inFlight FROM queue_messages WHERE queue = ?`,
      )
      .get(this.now(), this.now(), this.name);
    return { visible: row?.visible ?? 0, inFlight: row?.inFlight ?? 0 };
  }

  /**
   * Makes every in-flight message visible again now. Only for a queue whose single consumer just restarted (the
   * local runner after a crash): its old deliveries have no owner left, so waiting out their timeouts is pointless.
   */
  releaseInFlight(): number {
    return this.db
      .prepare('UPDATE queue_messages SET visible_at = ?, handle = NULL WHERE queue = ? AND visible_at > ?')
      .run(this.now(), this.name, this.now()).changes;
  }

  /** The dead-letter table of this queue, oldest first. */
  deadLetters(): DeadLetter[] {
    return this.db
      .prepare<[string], Row & { reason: string; dead_at: number }>(
        'SELECT * FROM queue_dead_letters WHERE queue = ? ORDER BY seq',
      )
      .all(this.name)
      .map((r) => ({
        id: r.id,
        queue: r.queue,
        body: r.body,
        attributes: JSON.parse(r.attributes) as Record<string, string>,
        reason: r.reason,
        receiveCount: r.receive_count,
        sentAt: r.sent_at,
        deadAt: r.dead_at,
      }));
  }

  /** Sends dead letters back to the queue (all, or the given message ids) with a fresh receive count. */
  redrive(ids?: string[]): number {
    return immediate(this.db, () => {
      const letters = this.deadLetters().filter((d) => !ids || ids.includes(d.id));
      const now = this.now();
      for (const d of letters) {
        const attributes = Object.fromEntries(
          Object.entries(d.attributes).filter(([k]) => !k.startsWith('dlq_')),
        );
        this.db
          .prepare(
            'INSERT INTO queue_messages (id, queue, body, attributes, sent_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(randomUUID(), this.name, d.body, JSON.stringify(attributes), now, now);
        this.db.prepare('DELETE FROM queue_dead_letters WHERE queue = ? AND id = ?').run(this.name, d.id);
      }
      return letters.length;
    });
  }
}

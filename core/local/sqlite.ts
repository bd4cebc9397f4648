import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

/**
 * Opens a SQLite file shared by several processes (the local runner, its worker children, the CLI): WAL so readers
 * never block the writer, a generous busy timeout so concurrent writers wait instead of failing, and
 * `synchronous = FULL` so a committed transaction survives a power cut, not only a process kill.
 */
export function openDatabase(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 30_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  return db;
}

/** Runs `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so read-then-write is atomic. */
export function immediate<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}

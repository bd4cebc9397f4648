import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { DirectoryObjectStore } from '../core/local/dir-store.js';
import { processAlive } from '../core/local/process-alive.js';
import { LocalJobTable } from '../core/local/job-table.js';
import { SqliteLedger } from '../core/local/sqlite-ledger.js';
import { SqliteQueue } from '../core/local/sqlite-queue.js';
import { openDatabase, type Db } from '../core/local/sqlite.js';
import { ensureHome } from './home-guard.js';
import { ENV, processEnv } from '../core/config/env.js';

/**
 * Local mode's state directory (`.local/` by default, `--home` to change) and the embedded adapters on it:
 *
 *   state/queues.sqlite   EMBED, LINES, WORDS queues + dead letters   (SQS)
 *   state/ledger.sqlite   CompactionRun rows + change log + checkpoints (DynamoDB + Streams)
 *   state/jobs.sqlite     the EmbeddingJob stand-ins                   (EmbeddingJob CRs)
 *   objects/{bucket}/…    receipts' NDJSON, deltas, snapshot archives  (S3)
 *   volume/{collection}/  snapshot versions + CURRENT                  (the shared EFS volume)
 *   scratch/              worker/compactor copies of snapshots         (a pod's emptyDir)
 *   pids/                 pid files of child processes                 (for orphan cleanup after a crash)
 */
export const DEFAULT_HOME = '.local';
export const ARTIFACTS_BUCKET = 'receipts';
export const VECTORS_BUCKET = 'vectors';
export const QUEUE_NAMES = { embed: 'EMBED', lines: 'LINES', words: 'WORDS' } as const;
/** Snapshot versions kept on the volume per collection in local mode: CURRENT and the one before (`snapshot prune`). */
export const LOCAL_KEEP_VERSIONS = 2;

/**
 * One `local run` per home at a time. The lock is SQLite's exclusive lock on `state/runner.lock` (a POSIX record
 * lock the kernel drops when the holder's process ends, SIGKILL included), so a dead runner's lock is free at once
 * and there is no stale lock to break: breaking one by reading a pid and deleting a file let two runners in.
 * `state/runner.pid` only says which process holds it (for `status`). Returns the release function; throws
 * ConfigError (exit 2) when a live runner holds the home.
 */
export function lockHome(paths: HomePaths): () => void {
  ensureHome(paths.root);
  const state = join(paths.root, 'state');
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const db = new Database(join(state, 'runner.lock'), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock; in EXCLUSIVE locking mode it is held until the connection closes.
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    db.prepare('INSERT INTO holder VALUES (?)').run(process.pid);
  } catch (err) {
    db.close();
    if (!String((err as { code?: string }).code).startsWith('SQLITE_BUSY')) throw err;
    const { pid } = runnerState(paths);
    throw new ConfigError(
      `another local run${pid ? ` (pid ${pid})` : ''} is using ${paths.root}; wait for it or stop it first`,
      { home: paths.root, ...(pid ? { pid } : {}) },
    );
  }
  const file = join(state, 'runner.pid');
  try {
    writeFileAtomic(file, `${process.pid}\n`);
  } catch (err) {
    db.close();
    throw err;
  }
  heldLocks.add(db);
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // already gone: the lock below is what counts
    }
    heldLocks.delete(db);
    db.close();
  };
}

/** Open lock connections: referenced here so that a caller dropping the release function cannot unlock by GC. */
const heldLocks = new Set<Database.Database>();

/** Written beside and renamed over `file`: a planted symlink at `file` is replaced, never followed. */
function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export interface RunnerState {
  /** The pid in `state/runner.pid`, if a runner has the home (or had it and was killed). */
  pid?: number;
  alive: boolean;
}

/** Whether a `local run` is working on the home now: the pid of its lock file, and whether that process lives. */
export function runnerState(paths: HomePaths): RunnerState {
  let text: string;
  try {
    text = readFileSync(join(paths.root, 'state', 'runner.pid'), 'utf8');
  } catch {
    return { alive: false };
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return { alive: false };
  return { pid, alive: processAlive(pid) };
}

export interface HomePaths {
  root: string;
  queues: string;
  ledger: string;
  jobs: string;
  objects: string;
  volume: string;
  scratch: string;
  pids: string;
  lease: string;
}

export function homePaths(home = processEnv()[ENV.EMBEDCTL_HOME] ?? DEFAULT_HOME): HomePaths {
  const root = resolve(home);
  return {
    root,
    queues: join(root, 'state', 'queues.sqlite'),
    ledger: join(root, 'state', 'ledger.sqlite'),
    jobs: join(root, 'state', 'jobs.sqlite'),
    objects: join(root, 'objects'),
    volume: join(root, 'volume'),
    scratch: join(root, 'scratch'),
    pids: join(root, 'pids'),
    lease: join(root, 'state', 'compactor.lease.json'),
  };
}

/** The embedded adapters of one home, opened once per process. */
export interface LocalPorts {
  paths: HomePaths;
  store: DirectoryObjectStore;
  ledger: SqliteLedger;
  jobs: LocalJobTable;
  queues: { embed: SqliteQueue; lines: SqliteQueue; words: SqliteQueue };
  close(): void;
}

export function openLocal(
  home?: string,
  options: { visibilitySeconds?: number; maxReceiveCount?: number } = {},
): LocalPorts {
  const paths = homePaths(home);
  ensureHome(paths.root);
  const queueDb: Db = openDatabase(paths.queues);
  // The compactor dead-letters a message after its own `maxReceives` (20) with the failure's reason; the queue's
  // redrive policy sits above it, as a backstop only, like the SQS redrive policy in the charts.
  const q = (name: string, maxReceiveCount: number) =>
    new SqliteQueue(queueDb, name, {
      visibilitySeconds: options.visibilitySeconds ?? 300,
      maxReceiveCount: options.maxReceiveCount ?? maxReceiveCount,
    });
  const ledger = SqliteLedger.open(paths.ledger);
  const jobs = LocalJobTable.open(paths.jobs);
  return {
    paths,
    store: new DirectoryObjectStore(paths.objects),
    ledger,
    jobs,
    queues: {
      embed: q(QUEUE_NAMES.embed, 5),
      lines: q(QUEUE_NAMES.lines, 25),
      words: q(QUEUE_NAMES.words, 25),
    },
    close: () => {
      queueDb.close();
      ledger.db.close();
      jobs.db.close();
    },
  };
}

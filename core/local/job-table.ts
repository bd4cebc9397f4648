import {
  embeddingJobName,
  EmbeddingJobSpec,
  specFromMessage,
  type CompactionState,
  type JobResult,
  type Phase,
  type WorkerReport,
} from '../contracts/embedding-job.js';
import type { EmbedMessage } from '../contracts/embed-message.js';
import type { Collection } from '../contracts/ids.js';
import type { Verdict } from '../jobs/lifecycle.js';
import type { JobStore } from '../ports/job-store.js';
import { immediate, openDatabase, type Db } from './sqlite.js';

/**
 * The SQLite JobStore, local stand-in for EmbeddingJob custom resources: one row per job, named like the CR
 * (`embeddingJobName(message)`), so a redelivered or re-submitted message creates nothing new. The local loop is the
 * only writer of phase/attempts (with the verdicts of the shared lifecycle, core/jobs/lifecycle.ts); a worker child writes only `report` and `result` (the controller/worker contract of
 * controller/README.md), and the stream processor only `compaction`.
 */
export interface LocalJob {
  name: string;
  spec: EmbeddingJobSpec;
  phase: Phase;
  attempts: number;
  workerJob?: string;
  createdAt: number;
  startTime?: number;
  completionTime?: number;
  nextAttemptAt?: number;
  reason?: string;
  message?: string;
  result?: JobResult;
  report?: WorkerReport;
  compaction: Partial<Record<Collection, CompactionState>>;
  compactionError?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  phase TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker_job TEXT,
  created_at INTEGER NOT NULL,
  start_time INTEGER,
  completion_time INTEGER,
  next_attempt_at INTEGER,
  reason TEXT,
  message TEXT,
  result TEXT,
  report TEXT,
  compaction TEXT NOT NULL DEFAULT '{}',
  compaction_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase, created_at);
`;

interface Row {
  name: string;
  spec: string;
  phase: Phase;
  attempts: number;
  worker_job: string | null;
  created_at: number;
  start_time: number | null;
  completion_time: number | null;
  next_attempt_at: number | null;
  reason: string | null;
  message: string | null;
  result: string | null;
  report: string | null;
  compaction: string;
  compaction_error: string | null;
}

export class LocalJobTable implements JobStore {
  constructor(readonly db: Db) {
    db.exec(SCHEMA);
  }

  static open(path: string): LocalJobTable {
    return new LocalJobTable(openDatabase(path));
  }

  /** Creates the job of a message unless it exists. Returns the name and whether it was new. */
  createFromMessage(m: EmbedMessage, source: 'sqs' | 'manual' = 'sqs'): { name: string; created: boolean } {
    const name = embeddingJobName(m);
    const res = this.db
      .prepare(
        `INSERT INTO jobs (name, spec, phase, created_at) VALUES (?, ?, 'Pending', ?) ON CONFLICT (name) DO NOTHING`,
      )
      .run(name, JSON.stringify(specFromMessage(m, source)), Date.now());
    return { name, created: res.changes === 1 };
  }

  async create(m: EmbedMessage, source: 'sqs' | 'manual'): Promise<{ name: string; created: boolean }> {
    return this.createFromMessage(m, source);
  }

  /** Writes a lifecycle verdict as the row's phase, reason and message. */
  settle(name: string, verdict: Verdict, now: Date): void {
    const at = now.getTime();
    if (verdict.phase === 'Succeeded') return this.succeed(name, at);
    if (verdict.phase === 'Pending')
      return this.retry(name, verdict.reason, verdict.message, at + verdict.retryInMs);
    const attempts = this.get(name)?.attempts ?? 0;
    const message = verdict.gaveUp ? `${verdict.message} (after ${attempts} attempts)` : verdict.message;
    this.fail(name, verdict.reason, message, at);
  }

  get(name: string): LocalJob | undefined {
    const row = this.db.prepare<[string], Row>('SELECT * FROM jobs WHERE name = ?').get(name);
    return row ? toJob(row) : undefined;
  }

  list(phase?: Phase): LocalJob[] {
    const rows = phase
      ? this.db
          .prepare<[string], Row>('SELECT * FROM jobs WHERE phase = ? ORDER BY created_at, name')
          .all(phase)
      : this.db.prepare<[], Row>('SELECT * FROM jobs ORDER BY created_at, name').all();
    return rows.map(toJob);
  }

  counts(): Record<Phase, number> {
    const out: Record<Phase, number> = { Pending: 0, Scheduled: 0, Running: 0, Succeeded: 0, Failed: 0 };
    for (const r of this.db
      .prepare<[], { phase: Phase; n: number }>('SELECT phase, COUNT(*) AS n FROM jobs GROUP BY phase')
      .all())
      out[r.phase] = r.n;
    return out;
  }

  /**
   * Claims up to `limit` eligible Pending jobs (backoff elapsed) for a worker batch: Scheduled, attempt + 1, report
   * cleared. Priority first, then age: the order of the controller's plan (`compareCandidates`, core/jobs/plan.ts).
   */
  claim(workerJob: string, limit: number, now = Date.now()): LocalJob[] {
    return immediate(this.db, () => {
      const rows = this.db
        .prepare<[number, number], Row>(
          `SELECT * FROM jobs WHERE phase = 'Pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
           ORDER BY json_extract(spec, '$.priority') DESC, created_at, name LIMIT ?`,
        )
        .all(now, limit);
      const update = this.db.prepare(
        `UPDATE jobs SET phase = 'Scheduled', attempts = attempts + 1, worker_job = ?, report = NULL,
         start_time = COALESCE(start_time, ?), next_attempt_at = NULL WHERE name = ?`,
      );
      for (const r of rows) update.run(workerJob, now, r.name);
      return rows.map((r) => this.get(r.name)!);
    });
  }

  markRunning(names: string[]): void {
    const stmt = this.db.prepare(`UPDATE jobs SET phase = 'Running' WHERE name = ? AND phase = 'Scheduled'`);
    immediate(this.db, () => names.forEach((n) => stmt.run(n)));
  }

  /** The worker's report of one item (only `report` and `result`; the loop turns it into a phase). */
  report(name: string, report: WorkerReport, result?: JobResult): boolean {
    const res = this.db
      .prepare('UPDATE jobs SET report = ?, result = COALESCE(?, result) WHERE name = ?')
      .run(JSON.stringify(report), result ? JSON.stringify(result) : null, name);
    return res.changes === 1;
  }

  private succeed(name: string, now: number): void {
    this.db
      .prepare(
        `UPDATE jobs SET phase = 'Succeeded', completion_time = ?, reason = 'Completed', message = NULL WHERE name = ?`,
      )
      .run(now, name);
  }

  fail(name: string, reason: string, message: string, now = Date.now()): void {
    this.db
      .prepare(
        `UPDATE jobs SET phase = 'Failed', completion_time = ?, reason = ?, message = ? WHERE name = ?`,
      )
      .run(now, reason, message, name);
  }

  /** Back to Pending with a backoff (a retryable failure, or a claim whose worker died). */
  retry(name: string, reason: string, message: string, nextAttemptAt: number): void {
    this.db
      .prepare(
        `UPDATE jobs SET phase = 'Pending', worker_job = NULL, reason = ?, message = ?, next_attempt_at = ? WHERE name = ?`,
      )
      .run(reason, message, nextAttemptAt, name);
  }

  /** Records a compaction outcome; Completed never moves back. Returns false when the job does not exist. */
  setCompaction(name: string, collection: Collection, state: CompactionState, error?: string): boolean {
    return immediate(this.db, () => {
      const job = this.get(name);
      if (!job) return false;
      if (job.compaction[collection] === 'Completed') return true;
      const compaction = { ...job.compaction, [collection]: state };
      this.db
        .prepare(
          'UPDATE jobs SET compaction = ?, compaction_error = COALESCE(?, compaction_error) WHERE name = ?',
        )
        .run(JSON.stringify(compaction), error ?? null, name);
      return true;
    });
  }
}

/** The job's vectors are in a published snapshot for every collection of its spec. */
export function isCompacted(job: LocalJob): boolean {
  return job.spec.collections.every((c) => job.compaction[c] === 'Completed');
}

function toJob(r: Row): LocalJob {
  return {
    name: r.name,
    spec: EmbeddingJobSpec.parse(JSON.parse(r.spec)),
    phase: r.phase,
    attempts: r.attempts,
    ...(r.worker_job ? { workerJob: r.worker_job } : {}),
    createdAt: r.created_at,
    ...(r.start_time !== null ? { startTime: r.start_time } : {}),
    ...(r.completion_time !== null ? { completionTime: r.completion_time } : {}),
    ...(r.next_attempt_at !== null ? { nextAttemptAt: r.next_attempt_at } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.message ? { message: r.message } : {}),
    ...(r.result ? { result: JSON.parse(r.result) as JobResult } : {}),
    ...(r.report ? { report: JSON.parse(r.report) as WorkerReport } : {}),
    compaction: JSON.parse(r.compaction) as LocalJob['compaction'],
    ...(r.compaction_error ? { compactionError: r.compaction_error } : {}),
  };
}

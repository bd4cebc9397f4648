import type { EmbedMessage } from '../contracts/embed-message.js';
import type { Phase, WorkerReport } from '../contracts/embedding-job.js';
import type { Verdict } from '../jobs/lifecycle.js';

/**
 * Where EmbeddingJobs live: custom resources behind an informer cache in Kubernetes
 * (core/kube/embedding-job-store.ts), a SQLite table in local mode (core/local/job-table.ts). The lifecycle's
 * decisions (core/jobs/) are the same for both; a store only reads a job's facts and writes a verdict down, in its
 * own words (status conditions, or a row's reason and message).
 */
export interface JobStore {
  /** Creates the job of an admitted message unless it exists (a redelivered or re-submitted message). */
  create(message: EmbedMessage, source: 'sqs' | 'manual'): Promise<{ name: string; created: boolean }>;
  /** The job as the store's cache has it (no I/O: the informer cache, or the local table). */
  get(name: string): JobRecord | undefined;
  /** Writes what the lifecycle decided about the job's current attempt. The SQLite store writes synchronously. */
  settle(name: string, verdict: Verdict, now: Date): void | Promise<void>;
}

/** What the lifecycle reads of one job, whichever store holds it. */
export interface JobRecord {
  name: string;
  phase: Phase;
  attempts: number;
  /** The worker (Job or process) of the current attempt. */
  workerJob?: string;
  /** What a worker wrote about its item; whether it counts is the reader's check (it must name the claimant). */
  report?: WorkerReport;
  /** Why the job is in its phase (`Completed`, a failure reason, the reason of a pending retry). */
  reason?: string;
  /** Earliest time of the next attempt after a retryable failure, ms since epoch. */
  nextAttemptAt?: number;
}

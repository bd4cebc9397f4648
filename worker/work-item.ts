import type { EmbeddingJobSpec, JobResult } from '../core/contracts/embedding-job.js';

/** One receipt to embed: an EmbeddingJob (cloud) or a local job. */
export interface WorkItem {
  /** EmbeddingJob name (or local job id); recorded in the CompactionRun as `job_name`. */
  name: string;
  uid?: string;
  /** Identifies the attempt (worker Job name, or an attempt number): same attempt → same run id. */
  attemptKey: string | number;
  spec: Pick<EmbeddingJobSpec, 'imageId' | 'receiptId' | 'artifactsBucket' | 'linesKey' | 'wordsKey'> &
    Partial<Pick<EmbeddingJobSpec, 'collections' | 'model'>>;
}

export type FailureReason = 'BadInput' | 'SourceMissing' | 'Transient';

/** Where each item's outcome goes: the EmbeddingJob's status (cloud), the job table (local), a file (no Kubernetes). */
export interface Reporter {
  succeeded(item: WorkItem, result: JobResult): Promise<void>;
  failed(item: WorkItem, failure: { reason: FailureReason; message: string }): Promise<void>;
}

export interface JobOutcome {
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  result?: JobResult;
  reason?: FailureReason;
  message?: string;
  /** The reporter accepted the outcome. */
  reported: boolean;
}

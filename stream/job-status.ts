import type { EmbeddingJobStatus } from '../core/contracts/embedding-job.js';
import type { Collection } from '../core/contracts/ids.js';
import { PipelineError } from '../core/errors.js';
import { setCondition, type ConditionInput } from '../core/kube/conditions.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { isConflict, isNotFound, type Kube } from '../core/kube/rest.js';
import type { CompactionReport } from './change-detection.js';

/**
 * Where the stream processor records compaction results: `status.compaction.{lines,words}` and a `Compacted`
 * condition on the EmbeddingJob in the cloud; the local runner's job table locally.
 */
export interface JobStatusSink {
  /** Idempotent. Resolves when recorded, or when the job no longer exists (nothing to report to). */
  report(report: CompactionReport): Promise<void>;
}

type CompactionStatus = NonNullable<EmbeddingJobStatus['compaction']>;

/**
 * The Compacted condition for a compaction status: True when every collection of `collections` is Completed (the
 * run's collections when the report names them, else the job's `spec.collections`; a collection left out of the
 * run is not applicable).
 */
export function compactedCondition(
  compaction: CompactionStatus,
  collections: readonly Collection[],
  detail: { error?: string },
): ConditionInput {
  const states = collections.map((c) => compaction[c] ?? 'Pending');
  if (states.some((s) => s === 'Failed')) {
    const failed = collections.filter((c) => compaction[c] === 'Failed');
    return compacted(
      'False',
      'CompactionFailed',
      `compaction failed for ${failed.join(', ')}${detail.error ? `: ${detail.error}` : ''}`,
    );
  }
  if (states.every((s) => s === 'Completed')) {
    return compacted('True', 'Compacted', `${collections.join(' and ')} merged into a published snapshot`);
  }
  const waiting = collections.filter((c) => compaction[c] !== 'Completed');
  return compacted('False', 'CompactionPending', `waiting for ${waiting.join(', ')}`);
}

const compacted = (status: ConditionInput['status'], reason: string, message: string): ConditionInput => ({
  type: 'Compacted',
  status,
  reason,
  message: message.slice(0, 32_000),
});

/**
 * JobStatusSink over the EmbeddingJob status subresource: read, then a merge patch conditional on the read
 * resourceVersion (retried on 409), so status.compaction and the condition change together and never disagree.
 */
export class KubeJobStatusSink implements JobStatusSink {
  private readonly jobs: EmbeddingJobClient;

  constructor(
    kube: Kube,
    private readonly namespace: string,
  ) {
    this.jobs = new EmbeddingJobClient(kube);
  }

  async report(r: CompactionReport): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const job = await this.jobs.get(this.namespace, r.jobName);
      if (!job) return;
      const status = job.status ?? {};
      const compaction: CompactionStatus = { ...(status.compaction ?? {}) };
      // Completed never moves back (a later FAILED report for a redelivered run must not undo a merge).
      if (compaction[r.collection] === 'Completed' || compaction[r.collection] === r.state) return;
      compaction[r.collection] = r.state;
      const collections = r.runCollections ?? job.spec?.collections ?? ['lines', 'words'];
      const conditions = setCondition(
        status.conditions,
        compactedCondition(compaction, collections, { error: r.error }),
        job.metadata.generation,
      );
      try {
        await this.jobs.patchStatus(
          this.namespace,
          r.jobName,
          { compaction, conditions },
          job.metadata.resourceVersion,
        );
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (isConflict(err)) continue;
        throw err;
      }
    }
    throw new PipelineError('Transient', `EmbeddingJob ${r.jobName}: status update kept conflicting`, {
      namespace: this.namespace,
      name: r.jobName,
    });
  }
}

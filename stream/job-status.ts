import { ApiException, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Condition, EmbeddingJobStatus } from '../core/contracts/embedding-job.js';
import { GROUP, PLURAL, VERSION } from '../core/contracts/embedding-job.js';
import type { Collection } from '../core/contracts/ids.js';
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
  previous: Condition | undefined,
  detail: { error?: string },
  generation: number | undefined,
  now = new Date(),
): Condition {
  const states = collections.map((c) => compaction[c] ?? 'Pending');
  let status: Condition['status'];
  let reason: string;
  let message: string;
  if (states.some((s) => s === 'Failed')) {
    status = 'False';
    reason = 'CompactionFailed';
    const failed = collections.filter((c) => compaction[c] === 'Failed');
    message = `compaction failed for ${failed.join(', ')}${detail.error ? `: ${detail.error}` : ''}`;
  } else if (states.every((s) => s === 'Completed')) {
    status = 'True';
    reason = 'Compacted';
    message = `${collections.join(' and ')} merged into a published snapshot`;
  } else {
    status = 'False';
    reason = 'CompactionPending';
    message = `waiting for ${collections.filter((c) => compaction[c] !== 'Completed').join(', ')}`;
  }
  return {
    type: 'Compacted',
    status,
    reason,
    message: message.slice(0, 32_000),
    lastTransitionTime:
      previous && previous.status === status ? previous.lastTransitionTime : now.toISOString(),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

/** JobStatusSink over the EmbeddingJob status subresource (read, then replace with resourceVersion; retried on 409). */
export class KubeJobStatusSink implements JobStatusSink {
  private readonly api: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async report(r: CompactionReport): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      let job: {
        metadata: { resourceVersion?: string; generation?: number };
        spec?: { collections?: Collection[] };
        status?: EmbeddingJobStatus;
      };
      try {
        job = await this.api.getNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          namespace: this.namespace,
          plural: PLURAL,
          name: r.jobName,
        });
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return;
        throw err;
      }
      const status: EmbeddingJobStatus = { ...(job.status ?? {}) };
      const compaction: CompactionStatus = { ...(status.compaction ?? {}) };
      // Completed never moves back (a later FAILED report for a redelivered run must not undo a merge).
      // status.compaction and the condition change in one replace, so they never disagree.
      if (compaction[r.collection] === 'Completed' || compaction[r.collection] === r.state) return;
      compaction[r.collection] = r.state;
      const conditions = [...(status.conditions ?? [])];
      const idx = conditions.findIndex((c) => c.type === 'Compacted');
      const cond = compactedCondition(
        compaction,
        r.runCollections ?? job.spec?.collections ?? ['lines', 'words'],
        idx >= 0 ? conditions[idx] : undefined,
        { error: r.error },
        job.metadata.generation,
      );
      if (idx >= 0) conditions[idx] = cond;
      else conditions.push(cond);
      const body = { ...job, status: { ...status, compaction, conditions } };
      try {
        await this.api.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          namespace: this.namespace,
          plural: PLURAL,
          name: r.jobName,
          body,
        });
        return;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return;
        if (err instanceof ApiException && err.code === 409) continue;
        throw err;
      }
    }
    throw new Error(`EmbeddingJob ${r.jobName}: status update kept conflicting`);
  }
}

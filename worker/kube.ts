import { backoffMs } from '../core/backoff.js';
import type { EmbeddingJob, JobResult, WorkerReport } from '../core/contracts/embedding-job.js';
import type { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { isNotFound } from '../core/kube/rest.js';
import type { Logger } from '../core/log.js';
import type { FailureReason, Reporter, WorkItem } from './work-item.js';

/**
 * Kubernetes side of the worker (controller/README.md, "Contract with the worker"): read the batch's EmbeddingJobs,
 * and report each item with one merge patch of `status.report` (+ `status.result`) as soon as it is durable.
 */
export async function loadWorkItems(
  client: EmbeddingJobClient,
  namespace: string,
  names: string[],
  workerJob: string | undefined,
  log: Logger,
): Promise<WorkItem[]> {
  const items: WorkItem[] = [];
  for (const name of names) {
    const ej = await withRetry(() => client.get(namespace, name));
    if (!ej) {
      log.warn({ ej: name }, 'EmbeddingJob not found (deleted?); skipping it');
      continue;
    }
    if (workerJob && ej.status?.report?.workerJob === workerJob) {
      log.info({ ej: name }, 'already reported by this worker Job; skipping it');
      continue;
    }
    items.push(workItemOf(ej, workerJob));
  }
  return items;
}

/** The attempt key is the worker Job name (unique per members + attempt numbers), else the attempt count. */
export function workItemOf(ej: EmbeddingJob, workerJob: string | undefined): WorkItem {
  return {
    name: ej.metadata.name,
    ...(ej.metadata.uid ? { uid: ej.metadata.uid } : {}),
    attemptKey: workerJob ?? `attempt-${ej.status?.attempts ?? 0}`,
    spec: ej.spec,
  };
}

export class KubeStatusReporter implements Reporter {
  constructor(
    private readonly client: EmbeddingJobClient,
    private readonly namespace: string,
    private readonly workerJob: string,
    private readonly log: Logger,
  ) {}

  succeeded(item: WorkItem, result: JobResult): Promise<void> {
    return this.patch(
      item,
      { workerJob: this.workerJob, outcome: 'Succeeded', reportedAt: new Date().toISOString() },
      result,
    );
  }

  failed(item: WorkItem, failure: { reason: FailureReason; message: string }): Promise<void> {
    return this.patch(item, {
      workerJob: this.workerJob,
      outcome: 'Failed',
      reason: failure.reason,
      message: failure.message.slice(0, 4000),
      reportedAt: new Date().toISOString(),
    });
  }

  private async patch(item: WorkItem, report: WorkerReport, result?: JobResult): Promise<void> {
    try {
      await withRetry(() =>
        this.client.patchStatus(this.namespace, item.name, { report, ...(result ? { result } : {}) }),
      );
    } catch (err) {
      if (isNotFound(err)) {
        this.log.warn({ ej: item.name }, 'EmbeddingJob deleted before its report; nothing to patch');
        return;
      }
      throw err;
    }
  }
}

async function withRetry<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err) || i >= attempts) throw err;
      const code = (err as { code?: number }).code;
      if (code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(i - 1, { baseMs: 200, maxMs: 5_000 })));
    }
  }
}

import type { EmbedMessage } from '../contracts/embed-message.js';
import { embeddingJobName, newEmbeddingJob, type EmbeddingJob } from '../contracts/embedding-job.js';
import type { Verdict } from '../jobs/lifecycle.js';
import { CONDITION, verdictStatus } from '../jobs/transitions.js';
import type { JobRecord, JobStore } from '../ports/job-store.js';
import type { EmbeddingJobClient, StatusPatch } from './embedding-jobs.js';

export interface KubeJobStoreDeps {
  client: Pick<EmbeddingJobClient, 'create' | 'patchStatus'>;
  /** The EmbeddingJob informer (or any cache of them by name). */
  cache: { get(name: string): EmbeddingJob | undefined };
  namespace: string;
}

/**
 * The Kubernetes JobStore: EmbeddingJob custom resources, read from the informer cache and written through the
 * status subresource, conditionally on the resourceVersion read (a report a worker wrote in between is never
 * overwritten: the write fails with 409 and the reconciler decides again).
 */
export class KubeJobStore implements JobStore {
  constructor(private readonly d: KubeJobStoreDeps) {}

  async create(message: EmbedMessage, source: 'sqs' | 'manual'): Promise<{ name: string; created: boolean }> {
    const { created } = await this.d.client.create(newEmbeddingJob(message, this.d.namespace, source));
    return { name: embeddingJobName(message), created };
  }

  get(name: string): JobRecord | undefined {
    const ej = this.d.cache.get(name);
    return ej && jobRecord(ej);
  }

  async settle(name: string, verdict: Verdict, now: Date): Promise<void> {
    const ej = this.d.cache.get(name);
    if (!ej) return;
    await this.writeStatus(ej, verdictStatus(ej, verdict, now).patch);
  }

  /**
   * The one status write of the controller (settle and the status reconciler's decisions): conditional on the
   * resourceVersion of the object the decision was made from.
   */
  async writeStatus(ej: EmbeddingJob, patch: StatusPatch): Promise<void> {
    await this.d.client.patchStatus(this.d.namespace, ej.metadata.name, patch, ej.metadata.resourceVersion);
  }
}

/** An EmbeddingJob in the lifecycle's terms; the reason is the one of the condition that explains its phase. */
export function jobRecord(ej: EmbeddingJob): JobRecord {
  const st = ej.status ?? {};
  const phase = st.phase ?? 'Pending';
  const because =
    phase === 'Succeeded'
      ? CONDITION.Succeeded
      : phase === 'Failed'
        ? CONDITION.Failed
        : phase === 'Pending'
          ? CONDITION.Retrying
          : CONDITION.Scheduled;
  const reason = st.conditions?.find((c) => c.type === because && c.status === 'True')?.reason;
  const next = Date.parse(st.nextAttemptTime ?? '');
  return {
    name: ej.metadata.name,
    phase,
    attempts: st.attempts ?? 0,
    ...(st.workerJob ? { workerJob: st.workerJob } : {}),
    ...(st.report ? { report: st.report } : {}),
    ...(reason ? { reason } : {}),
    ...(Number.isNaN(next) ? {} : { nextAttemptAt: next }),
  };
}

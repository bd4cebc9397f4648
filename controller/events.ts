import { API_VERSION, KIND, type EmbeddingJob } from '../core/contracts/embedding-job.js';
import type { Logger } from '../core/log.js';
import type { Kube } from '../core/kube/rest.js';
import type { RecordedEvent } from '../core/jobs/transitions.js';

/**
 * Records core/v1 Events on EmbeddingJobs, fire-and-forget: an Event that cannot be written is logged at debug and
 * never fails a reconcile. Only transitions are recorded (the reconciler emits on change), so no aggregation needed.
 */
export class EventRecorder {
  private inflight = 0;
  constructor(
    private readonly kube: Kube,
    private readonly opts: { component: string; instance: string; log: Logger; maxInflight?: number },
  ) {}

  record(ej: EmbeddingJob, e: RecordedEvent): void {
    if (this.inflight >= (this.opts.maxInflight ?? 64)) return;
    const ns = ej.metadata.namespace ?? 'default';
    const now = new Date().toISOString();
    this.inflight++;
    this.kube
      .request('POST', `/api/v1/namespaces/${ns}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${ej.metadata.name}.`, namespace: ns },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: KIND,
            name: ej.metadata.name,
            namespace: ns,
            uid: ej.metadata.uid,
          },
          type: e.type,
          reason: e.reason,
          message: e.message.slice(0, 1024),
          source: { component: this.opts.component },
          reportingComponent: this.opts.component,
          reportingInstance: this.opts.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) => this.opts.log.debug({ ej: ej.metadata.name, err }, 'event not recorded'))
      .finally(() => this.inflight--);
  }
}

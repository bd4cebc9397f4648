import type { EmbeddingJob } from '../core/contracts/embedding-job.js';
import type { Logger } from '../core/log.js';
import { Controller, type ReconcileContext, type ReconcileResult } from '../core/kube/controller.js';
import { KubeJobStore } from '../core/kube/embedding-job-store.js';
import type { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import type { Informer } from '../core/kube/informer.js';
import type { KubeMetrics } from '../core/kube/metrics.js';
import { isNotFound, type Kube } from '../core/kube/rest.js';
import type { Job, KubeEvent, Pod } from '../core/kube/types.js';
import type { StatusSettings } from './config.js';
import type { EventRecorder } from './events.js';
import type { JobIndex } from './job-index.js';
import type { ControllerMetrics } from './metrics.js';
import { decide, type DecideInput } from '../core/jobs/transitions.js';
import { parseMembers } from './worker-job.js';

export interface StatusDeps {
  kube: Kube;
  ejClient: EmbeddingJobClient;
  ejs: Informer<EmbeddingJob>;
  jobs: Informer<Job>;
  pods: Informer<Pod>;
  index: JobIndex;
  events: EventRecorder;
  metrics: ControllerMetrics;
  kubeMetrics?: KubeMetrics;
  settings: StatusSettings;
  namespace: string;
  /** Why the worker ConfigMap is refused, if it is (shown on waiting EmbeddingJobs). */
  workerConfigRefused?: () => string | undefined;
  log: Logger;
}

/**
 * The status reconciler: one EmbeddingJob per key. It reads the caches, lets `decide` (pure) say what changed, and
 * writes status once through the Kubernetes JobStore, conditionally on the resourceVersion it read. Woken by the EmbeddingJob, its worker Jobs and
 * their pods, and by a periodic resync.
 */
export class StatusReconciler {
  readonly controller: Controller;
  private readonly store: KubeJobStore;

  constructor(private readonly d: StatusDeps) {
    this.store = new KubeJobStore({ client: d.ejClient, cache: d.ejs, namespace: d.namespace });
    this.controller = new Controller({
      name: 'embeddingjob-status',
      reconcile: (key, ctx) => this.reconcile(key, ctx),
      concurrency: d.settings.concurrency,
      log: d.log,
      logKey: 'ej',
      ...(d.kubeMetrics ? { metrics: d.kubeMetrics } : {}),
    });
    const enqueue = (ej: EmbeddingJob) => this.controller.enqueue(ej.metadata.name);
    d.ejs.on('add', enqueue).on('update', enqueue);
    const members = (o: Job | Pod) => {
      for (const m of parseMembers(o)) this.controller.enqueue(m.name);
    };
    d.jobs.on('add', members).on('update', members).on('delete', members);
    d.pods.on('add', members).on('update', members).on('delete', members);
  }

  async start(signal: AbortSignal): Promise<void> {
    await Promise.all([
      this.d.ejs.waitForSync(signal),
      this.d.jobs.waitForSync(signal),
      this.d.pods.waitForSync(signal),
    ]);
    const resync = () => this.requeueAll();
    resync();
    const timer = setInterval(resync, this.d.settings.resyncSeconds * 1000);
    timer.unref();
    try {
      await this.controller.start(signal);
    } finally {
      clearInterval(timer);
    }
  }

  /** Reconcile every EmbeddingJob (a periodic safety net; and when the worker ConfigMap is refused or fixed). */
  requeueAll(): void {
    for (const ej of this.d.ejs.list()) this.controller.enqueue(ej.metadata.name);
  }

  private podsOf(jobName: string | undefined): Pod[] {
    if (!jobName) return [];
    return this.d.pods.list().filter((p) => p.metadata.labels?.['batch.kubernetes.io/job-name'] === jobName);
  }

  async reconcile(name: string, { log }: ReconcileContext): Promise<ReconcileResult> {
    const ej = this.d.ejs.get(name);
    if (!ej || ej.metadata.deletionTimestamp) return {};
    const s = this.d.settings;
    const workerJob = ej.status?.workerJob;
    const input: DecideInput = {
      ej,
      claims: this.d.index.claims(name),
      job: workerJob ? (this.d.jobs.get(workerJob) ?? 'unknown') : undefined,
      pods: this.podsOf(workerJob),
      now: new Date(),
      ...(this.d.workerConfigRefused?.() ? { workerConfigRefused: this.d.workerConfigRefused()! } : {}),
      settings: {
        maxAttempts: s.maxAttempts,
        retryBaseMs: s.retryBaseSeconds * 1000,
        retryMaxMs: s.retryMaxSeconds * 1000,
        finishedTtlMs: s.finishedTtlSeconds * 1000,
        podRejectedGraceMs: s.podRejectedGraceSeconds * 1000,
        imagePullGraceMs: s.imagePullGraceSeconds * 1000,
      },
    };
    let d = decide(input);
    if (d.lookupJob) {
      input.job = (await this.getJob(d.lookupJob)) ?? 'gone';
      d = decide(input);
    }
    if (d.lookupEvents) {
      const rejected = await this.failedCreate(d.lookupEvents);
      if (rejected) {
        input.podRejected = rejected;
        d = decide(input);
      }
    }
    if (d.patch) {
      await this.store.writeStatus(ej, d.patch);
      if (d.patch.phase)
        this.d.metrics.transitions.inc({ phase: d.patch.phase, reason: d.events[0]?.reason ?? '' });
      // Events: every Warning (failures, retries, stuck pods) and the final Normal one. Scheduled and Running are
      // visible in conditions; skipping their Events saves one API write per EmbeddingJob at 100/s.
      for (const e of d.events)
        if (e.type === 'Warning' || e.reason === 'Succeeded') this.d.events.record(ej, e);
      log.info(
        { phase: d.patch.phase ?? ej.status?.phase, reason: d.events[0]?.reason, message: d.patch.message },
        'status updated',
      );
    }
    if (d.deleteJob) await this.deleteJob(d.deleteJob);
    if (d.deleteEmbeddingJob) {
      await this.d.ejClient.delete(this.d.namespace, name, ej.metadata.uid);
      log.info('deleted finished EmbeddingJob (TTL)');
      return {};
    }
    return d.requeueAfterMs === undefined ? {} : { requeueAfterMs: d.requeueAfterMs };
  }

  private async getJob(name: string): Promise<Job | undefined> {
    try {
      return await this.d.kube.request<Job>(
        'GET',
        `/apis/batch/v1/namespaces/${this.d.namespace}/jobs/${name}`,
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Message of the newest FailedCreate event on the Job: admission or Pod Security rejected its pod. */
  private async failedCreate(jobName: string): Promise<string | undefined> {
    const list = await this.d.kube.request<{ items: KubeEvent[] }>(
      'GET',
      `/api/v1/namespaces/${this.d.namespace}/events`,
      {
        query: {
          fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate`,
        },
      },
    );
    const newest = list.items.sort((a, b) => (b.lastTimestamp ?? '').localeCompare(a.lastTimestamp ?? ''))[0];
    return newest?.message;
  }

  private async deleteJob(name: string): Promise<void> {
    try {
      await this.d.kube.request('DELETE', `/apis/batch/v1/namespaces/${this.d.namespace}/jobs/${name}`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

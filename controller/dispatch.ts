import { backoffMs } from '../core/backoff.js';
import type { EmbeddingJob } from '../core/contracts/embedding-job.js';
import type { Logger } from '../core/log.js';
import type { Informer } from '../core/kube/informer.js';
import { isAlreadyExists, type Kube } from '../core/kube/rest.js';
import type { Job } from '../core/kube/types.js';
import type { DispatchSettings, WorkerSettings } from './config.js';
import type { JobIndex } from './job-index.js';
import type { ControllerMetrics } from './metrics.js';
import { planDispatch, type Candidate } from '../core/jobs/plan.js';
import { buildWorkerJob, workerJobName } from './worker-job.js';

export interface DispatchDeps {
  kube: Kube;
  ejs: Informer<EmbeddingJob>;
  jobs: Informer<Job>;
  index: JobIndex;
  namespace: string;
  /** Current settings (the worker ConfigMap may change them). */
  settings: () => { dispatch: DispatchSettings; worker: WorkerSettings } | undefined;
  metrics: ControllerMetrics;
  log: Logger;
  /** Test seam: runs after a Job is created (e.g. to simulate a crash there). */
  afterJobCreate?: (jobName: string) => void | Promise<void>;
}

/**
 * Creates worker Jobs for eligible EmbeddingJobs. Never writes EmbeddingJob status: the status reconciler adopts a
 * Job that claims an item's next attempt, so a crash between "Job created" and "status written" duplicates nothing.
 */
export class Dispatcher {
  private wake: (() => void) | undefined;
  private dirty = true;

  constructor(private readonly d: DispatchDeps) {
    const poke = () => this.trigger();
    d.ejs.on('add', poke).on('update', poke);
    d.jobs.on('update', poke).on('delete', poke);
  }

  trigger(): void {
    this.dirty = true;
    this.wake?.();
  }

  async start(signal: AbortSignal): Promise<void> {
    await Promise.all([this.d.ejs.waitForSync(signal), this.d.jobs.waitForSync(signal)]);
    let failures = 0;
    while (!signal.aborted) {
      let next = 5_000;
      if (this.dirty) {
        this.dirty = false;
        try {
          next = Math.min(next, await this.pass());
          failures = 0;
        } catch (err) {
          failures++;
          next = backoffMs(failures, { baseMs: 250, maxMs: 30_000 });
          this.dirty = true;
          this.d.log.error({ err, retryInMs: next }, 'dispatch failed');
        }
      }
      await new Promise<void>((resolve) => {
        // The abort listener goes when the wait ends: left on the signal, one accumulated per pass for the
        // controller's lifetime.
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(() => {
          this.dirty = true;
          done();
        }, next);
        this.wake = () => {
          clearTimeout(timer);
          // Coalesce a burst of events into one pass.
          setTimeout(done, 20);
        };
        signal.addEventListener('abort', done, { once: true });
        if (this.dirty || signal.aborted) this.wake();
      });
      this.wake = undefined;
    }
  }

  /** One planning pass; returns how long until the next pass is due. */
  async pass(): Promise<number> {
    const settings = this.d.settings();
    if (!settings) return 1_000;
    const { dispatch, worker } = settings;
    const now = Date.now();
    const candidates: Candidate[] = [];
    const byName = new Map<string, EmbeddingJob>();
    for (const ej of this.d.ejs.list()) {
      const st = ej.status;
      if (ej.metadata.deletionTimestamp || (st?.phase && st.phase !== 'Pending')) continue;
      const attempts = st?.attempts ?? 0;
      if (this.d.index.highestClaim(ej.metadata.name, now) > attempts) continue;
      const createdAt = Date.parse(ej.metadata.creationTimestamp ?? '') || now;
      const nextAt = Date.parse(st?.nextAttemptTime ?? '') || 0;
      byName.set(ej.metadata.name, ej);
      candidates.push({
        name: ej.metadata.name,
        priority: ej.spec.priority ?? 0,
        createdAt,
        readyAt: Math.max(createdAt, nextAt),
        attempt: attempts + 1,
        isolate: dispatch.isolateRetries && attempts > 0,
      });
    }
    const active = this.d.index.activeJobs(
      now,
      (ej, job) => this.d.ejs.get(ej)?.status?.report?.workerJob === job,
    );
    const plan = planDispatch({
      candidates,
      activeJobs: active,
      now,
      batchSize: dispatch.batchSize,
      batchWindowMs: dispatch.batchWindowSeconds * 1000,
      maxActivePods: dispatch.maxActivePods,
    });
    this.d.metrics.activePods.set(active + plan.batches.length);
    await Promise.all(
      plan.batches.map(async (batch) => {
        const members = batch.map((c) => ({
          name: c.name,
          attempt: c.attempt,
          uid: byName.get(c.name)!.metadata.uid ?? '',
        }));
        const name = workerJobName(members);
        this.d.index.expect(name, members);
        try {
          await this.d.kube.request('POST', `/apis/batch/v1/namespaces/${this.d.namespace}/jobs`, {
            body: buildWorkerJob(members, this.d.namespace, worker),
          });
          this.d.metrics.jobsCreated.inc();
          this.d.log.info({ job: name, ejs: members.map((m) => m.name) }, 'created worker Job');
        } catch (err) {
          if (!isAlreadyExists(err)) {
            this.d.index.unexpect(name); // nothing was created
            throw err;
          }
        }
        await this.d.afterJobCreate?.(name);
      }),
    );
    if (plan.batches.length > 0) this.dirty = true; // capacity or candidates may remain
    return plan.wakeAfterMs ?? 5_000;
  }
}

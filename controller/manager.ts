import { setTimeout as sleep } from 'node:timers/promises';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { EmbeddingJob } from '../core/contracts/embedding-job.js';
import type { Logger } from '../core/log.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { Informer } from '../core/kube/informer.js';
import { LeaderElector } from '../core/kube/leader-election.js';
import { Manager } from '../core/kube/manager.js';
import { KubeMetrics } from '../core/kube/metrics.js';
import { isNotFound, type Kube } from '../core/kube/rest.js';
import type { Job, Pod } from '../core/kube/types.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';
import {
  parseWorkerConfigMap,
  workerPolicyOf,
  type ControllerConfig,
  type DispatchSettings,
  type WorkerSettings,
} from './config.js';
import { Dispatcher } from './dispatch.js';
import { EventRecorder } from './events.js';
import { HttpServer } from './http.js';
import { Ingest } from './ingest.js';
import { JobIndex } from './job-index.js';
import { ControllerMetrics } from './metrics.js';
import { StatusReconciler } from './status.js';
import { WORKER_LABELS, WORKER_SELECTOR } from '../core/contracts/worker-pod.js';
import { WorkerConfigRefused, type WorkerPolicy } from './worker-policy.js';

export interface BuildOptions {
  kube: Kube;
  queue: Queue;
  config: ControllerConfig;
  log: Logger;
  /** Fixed worker settings; when absent they are read from the WORKER_CONFIGMAP ConfigMap (and re-read every 5 s). */
  worker?: WorkerSettings;
  /** Serve /metrics etc. Default true (on `config.metricsPort`). */
  http?: boolean;
  /** Informer watchdog (ms without any byte before a relist). */
  silenceMs?: number;
  /** Test seams (simulate a crash at these points). */
  hooks?: {
    afterCreate?: (name: string, message: QueueMessage) => void | Promise<void>;
    afterJobCreate?: (jobName: string) => void | Promise<void>;
  };
}

export interface ControllerApp {
  manager: Manager;
  registry: Registry;
  http?: HttpServer;
  ingest: Ingest;
  dispatcher: Dispatcher;
  status: StatusReconciler;
  informers: { ejs: Informer<EmbeddingJob>; jobs: Informer<Job>; pods: Informer<Pod> };
}

/**
 * Wires the controller: three informers (EmbeddingJobs, worker Jobs, worker pods) on every replica, and the
 * leader-only runnables ingest, dispatch and status. `manager.addLeaderRunnable` adds more (the stream processor).
 */
export function buildController(o: BuildOptions): ControllerApp {
  const { kube, config, log } = o;
  const ns = config.namespace;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const kubeMetrics = new KubeMetrics(registry);
  const metrics = new ControllerMetrics(registry);

  const informer = <T extends { metadata: { name: string } }>(
    name: string,
    path: string,
    labelSelector?: string,
  ) =>
    new Informer<T & { metadata: { name: string } }>(kube, {
      name,
      path,
      log,
      ...(labelSelector ? { labelSelector } : {}),
      ...(o.silenceMs ? { silenceMs: o.silenceMs } : {}),
      onRelist: (reason) => kubeMetrics.relists.inc({ resource: name, reason }),
    });
  const ejs = informer<EmbeddingJob>('embeddingjobs', EmbeddingJobClient.collectionPath(ns));
  const jobs = informer<Job>('jobs', `/apis/batch/v1/namespaces/${ns}/jobs`, WORKER_SELECTOR);
  const pods = informer<Pod>(
    'pods',
    `/api/v1/namespaces/${ns}/pods`,
    `app.kubernetes.io/component=${WORKER_LABELS['app.kubernetes.io/component']}`,
  );

  const ejClient = new EmbeddingJobClient(kube);
  const index = new JobIndex(jobs);
  const events = new EventRecorder(kube, {
    component: 'embedctl-controller',
    instance: config.identity,
    log,
  });

  let settings: { dispatch: DispatchSettings; worker: WorkerSettings } | undefined = o.worker
    ? { dispatch: config.dispatch, worker: o.worker }
    : undefined;
  /** Why the current worker ConfigMap is refused (shown on waiting EmbeddingJobs); undefined when accepted. */
  let workerConfigRefused: string | undefined;

  const ingest = new Ingest({
    queue: o.queue,
    ejClient,
    ejs,
    namespace: ns,
    settings: config.ingest,
    artifactBuckets: config.artifactBuckets,
    metrics,
    log: log.child({ runnable: 'ingest' }),
    ...(o.hooks?.afterCreate ? { afterCreate: o.hooks.afterCreate } : {}),
  });
  const dispatcher = new Dispatcher({
    kube,
    ejs,
    jobs,
    index,
    namespace: ns,
    settings: () => settings,
    metrics,
    log: log.child({ runnable: 'dispatch' }),
    ...(o.hooks?.afterJobCreate ? { afterJobCreate: o.hooks.afterJobCreate } : {}),
  });
  const status = new StatusReconciler({
    kube,
    ejClient,
    ejs,
    jobs,
    pods,
    index,
    events,
    metrics,
    kubeMetrics,
    settings: config.status,
    namespace: ns,
    workerConfigRefused: () => workerConfigRefused,
    log,
  });

  const elector = config.leader.enabled
    ? new LeaderElector(kube, {
        namespace: ns,
        name: config.leader.leaseName,
        identity: config.identity,
        leaseDurationMs: config.leader.leaseDurationSeconds * 1000,
        renewDeadlineMs: config.leader.renewDeadlineSeconds * 1000,
        retryPeriodMs: config.leader.retryPeriodSeconds * 1000,
        log,
      })
    : undefined;
  const manager = new Manager({
    log,
    metrics: kubeMetrics,
    leaseName: config.leader.leaseName,
    ...(elector ? { elector } : {}),
  });

  const all = [ejs, jobs, pods];
  for (const i of all) manager.add({ name: `informer`, start: (signal) => i.start(signal) });
  let http: HttpServer | undefined;
  if (o.http ?? true) {
    http = new HttpServer({
      port: config.metricsPort,
      registry,
      log,
      probes: { healthy: () => all.every((i) => i.healthy()), ready: () => all.every((i) => i.hasSynced()) },
    });
    const server = http;
    manager.add({ name: 'http', start: (signal) => server.start(signal) });
  }
  if (!o.worker) {
    manager.add({
      name: 'worker-config',
      start: (signal) =>
        watchWorkerConfig(
          kube,
          ns,
          config.workerConfigMap,
          config.dispatch,
          workerPolicyOf(config),
          log,
          signal,
          (s) => {
            settings = s;
            dispatcher.trigger();
          },
          (why) => {
            if (why === workerConfigRefused) return;
            workerConfigRefused = why;
            if (why) settings = undefined; // never keep building Jobs beside a refused edit
            status.requeueAll();
          },
        ),
    });
  }

  manager.addLeaderRunnable('ingest', (signal) => ingest.start(signal));
  manager.addLeaderRunnable('dispatch', (signal) => dispatcher.start(signal));
  manager.addLeaderRunnable('status', (signal) => status.start(signal));

  return {
    manager,
    registry,
    ...(http ? { http } : {}),
    ingest,
    dispatcher,
    status,
    informers: { ejs, jobs, pods },
  };
}

const WORKER_CONFIG_POLL_MS = 5_000;

/**
 * Reads the worker ConfigMap now and every 5 s (one small GET, so a user's edit applies within seconds); a bad
 * ConfigMap keeps the last good settings and logs why. One the worker policy refuses (another ServiceAccount, an
 * image not allowed, a Secret reference) stops dispatch until it is fixed, and `refused` carries the reason to the
 * EmbeddingJobs that wait.
 */
async function watchWorkerConfig(
  kube: Kube,
  ns: string,
  name: string,
  dispatchDefaults: DispatchSettings,
  policy: WorkerPolicy,
  log: Logger,
  signal: AbortSignal,
  apply: (s: { dispatch: DispatchSettings; worker: WorkerSettings }) => void,
  refused: (why: string | undefined) => void,
): Promise<void> {
  let last = '';
  while (!signal.aborted) {
    try {
      const cm = await kube.request<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${ns}/configmaps/${name}`,
      );
      const text = JSON.stringify(cm.data ?? {});
      if (text !== last) {
        last = text;
        apply(parseWorkerConfigMap(cm.data ?? {}, dispatchDefaults, { ...policy, configMap: name }));
        refused(undefined);
        log.info({ configMap: name }, 'worker settings loaded');
      }
    } catch (err) {
      if (err instanceof WorkerConfigRefused) {
        refused(err.message);
        log.error(
          { configMap: name, problems: err.problems },
          'worker ConfigMap refused by the worker policy; no worker Jobs are created until it is fixed',
        );
        await sleep(WORKER_CONFIG_POLL_MS, undefined, { signal }).catch(() => undefined);
        continue;
      }
      last = ''; // re-read and report again next time
      const why = isNotFound(err)
        ? `ConfigMap ${ns}/${name} not found`
        : err instanceof Error
          ? err.message
          : String(err);
      log.error(
        { configMap: name, err: why },
        'worker settings not loaded; no worker Jobs are created until they are',
      );
    }
    await sleep(WORKER_CONFIG_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
}

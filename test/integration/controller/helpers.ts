import { readFileSync } from 'node:fs';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { parse } from 'yaml';
import { pino } from 'pino';
import { queueDepth as depthOf } from '../../harness/sqs-depth.js';
import type { TestEnv } from '../../harness/env.js';
import { SqsQueue } from '../../../core/aws/sqs-queue.js';
import { ControllerConfig, WorkerSettings } from '../../../controller/config.js';
import { buildController, type BuildOptions, type ControllerApp } from '../../../controller/manager.js';
import { fromKubeconfig } from '../../../core/kube/credentials.js';
import { KubeRest, MERGE_PATCH } from '../../../core/kube/rest.js';
import type { EmbeddingJob } from '../../../core/contracts/embedding-job.js';
import { EmbeddingJobClient } from '../../../core/kube/embedding-jobs.js';
import type { Job, Pod } from '../../../core/kube/types.js';
import { CRD_FILE } from '../../../crds/generate.js';
import { workerContainer as worker } from '../../support/container-status.js';
import { waitFor as waitForValue } from '../../support/wait.js';

export const quietLog = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });

export async function kubeFor(env: TestEnv): Promise<KubeRest> {
  return KubeRest.fromCredentials(fromKubeconfig(env.kubeconfigPath), { maxSockets: 64 });
}

export function sqsClient(env: TestEnv): SQSClient {
  return new SQSClient({
    endpoint: env.aws.endpoint,
    region: env.aws.region,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  });
}

export function awsSettings(env: TestEnv) {
  return {
    region: env.aws.region,
    endpoint: env.aws.endpoint,
    credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
  };
}

/**
 * Applies the CRD from crds/ by server-side apply (no resourceVersion: test files running side by side apply it
 * concurrently, and the apiextensions controller updates its status in between) and waits until it is Established.
 */
export async function applyCrd(kube: KubeRest): Promise<void> {
  const crd = parse(readFileSync(CRD_FILE, 'utf8')) as { metadata: { name: string } };
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  await kube.request('PATCH', `${path}/${crd.metadata.name}`, {
    body: crd,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: 'embedctl-tests', force: 'true' },
  });
  await waitFor(async () => {
    const live = await kube.request<{ status?: { conditions?: { type: string; status: string }[] } }>(
      'GET',
      `${path}/${crd.metadata.name}`,
    );
    return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, 30_000);
}

/** A fresh namespace with the worker ServiceAccount (pods naming a missing one are rejected). */
export async function createNamespace(
  kube: KubeRest,
  prefix: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await kube.request('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } },
  });
  await kube.request('POST', `/api/v1/namespaces/${name}/serviceaccounts`, {
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'embedctl-worker' } },
  });
  return name;
}

export async function createQueues(
  env: TestEnv,
  prefix: string,
): Promise<{ url: string; dlqUrl: string; queue: SqsQueue }> {
  const sqs = sqsClient(env);
  const id = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${id}-dlq` }));
  const q = await sqs.send(
    new CreateQueueCommand({ QueueName: id, Attributes: { VisibilityTimeout: '30' } }),
  );
  return {
    url: q.QueueUrl!,
    dlqUrl: dlq.QueueUrl!,
    queue: new SqsQueue(q.QueueUrl!, awsSettings(env), dlq.QueueUrl!),
  };
}

export function queueDepth(env: TestEnv, url: string): Promise<number> {
  return depthOf(sqsClient(env), url);
}

export async function drainDlq(env: TestEnv, url: string): Promise<{ body: string; reason: string }[]> {
  const out: { body: string; reason: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await sqsClient(env).send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    for (const m of res.Messages ?? [])
      out.push({ body: m.Body ?? '', reason: m.MessageAttributes?.dlq_reason?.StringValue ?? '' });
    if (!res.Messages?.length && out.length) break;
  }
  return out;
}

export const testWorker = WorkerSettings.parse({ image: 'embedctl:test', ttlSecondsAfterFinished: 3600 });

export interface Running {
  app: ControllerApp;
  /** Graceful stop (leader runnables first, then the Lease is released). */
  stop(): Promise<void>;
  done: Promise<void>;
}

export function testConfig(
  ns: string,
  q: { url: string; dlqUrl: string },
  env: TestEnv,
  over: Record<string, unknown> = {},
): ControllerConfig {
  const o = over as { ingest?: object; dispatch?: object; status?: object; leader?: object };
  return ControllerConfig.parse({
    namespace: ns,
    identity: `test-${Math.random().toString(36).slice(2, 6)}`,
    embedQueueUrl: q.url,
    embedDlqUrl: q.dlqUrl,
    aws: { region: env.aws.region, endpoint: env.aws.endpoint },
    metricsPort: 0,
    artifactBuckets: ['artifacts'],
    ...over,
    ingest: { pollers: 2, waitSeconds: 1, visibilitySeconds: 5, ...o.ingest },
    dispatch: { batchSize: 5, batchWindowSeconds: 0.2, maxActivePods: 20, ...o.dispatch },
    status: { retryBaseSeconds: 0.5, retryMaxSeconds: 2, podRejectedGraceSeconds: 2, ...o.status },
    leader: { enabled: false, ...o.leader },
  });
}

export function startController(opts: Omit<BuildOptions, 'log'> & { log?: BuildOptions['log'] }): Running {
  const app = buildController({ log: quietLog(), http: false, worker: testWorker, ...opts });
  const ctl = new AbortController();
  const done = app.manager.run(ctl.signal);
  done.catch(() => undefined);
  return {
    app,
    done,
    stop: async () => {
      ctl.abort();
      await done.catch(() => undefined);
    },
  };
}

/** `waitFor` (test/support/wait.ts) with any falsy value meaning "not yet". */
export function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  return waitForValue(what, async () => (await fn()) || undefined, timeoutMs);
}

export const listEjs = (kube: KubeRest, ns: string) => new EmbeddingJobClient(kube).list(ns);
export const getEj = (kube: KubeRest, ns: string, name: string) => new EmbeddingJobClient(kube).get(ns, name);

export async function listJobs(kube: KubeRest, ns: string): Promise<Job[]> {
  return (await kube.request<{ items: Job[] }>('GET', `/apis/batch/v1/namespaces/${ns}/jobs`)).items;
}

export async function listPods(kube: KubeRest, ns: string, jobName?: string): Promise<Pod[]> {
  const query = jobName ? { labelSelector: `batch.kubernetes.io/job-name=${jobName}` } : {};
  return (await kube.request<{ items: Pod[] }>('GET', `/api/v1/namespaces/${ns}/pods`, { query })).items;
}

/** Writes pod status as the kubelet would (there is no kubelet here). */
export async function setPodStatus(
  kube: KubeRest,
  ns: string,
  pod: string,
  status: Pod['status'],
): Promise<void> {
  await kube.request('PATCH', `/api/v1/namespaces/${ns}/pods/${pod}/status`, {
    body: { status },
    contentType: MERGE_PATCH,
  });
}

const t = () => new Date().toISOString();
export const running = (): Pod['status'] => ({
  phase: 'Running',
  startTime: t(),
  conditions: [
    { type: 'PodScheduled', status: 'True' },
    { type: 'Ready', status: 'True' },
  ],
  containerStatuses: [worker({ running: { startedAt: t() } })],
});
export const exited = (exitCode: number, reason = exitCode === 0 ? 'Completed' : 'Error'): Pod['status'] => ({
  phase: exitCode === 0 ? 'Succeeded' : 'Failed',
  containerStatuses: [worker({ terminated: { exitCode, reason, finishedAt: t() } })],
});

/** What a worker does for one item: merge-patch status.report (+ result). */
export async function report(
  kube: KubeRest,
  ns: string,
  ej: string,
  workerJob: string,
  outcome: 'Succeeded' | 'Failed',
  reason?: string,
): Promise<void> {
  const status =
    outcome === 'Succeeded'
      ? {
          report: { workerJob, outcome, reportedAt: t() },
          result: { runId: `run-${ej}`, lines: 3, rows: 2, words: 7 },
        }
      : {
          report: {
            workerJob,
            outcome,
            reason,
            message: 'lines.ndjson, row 2, field text: Required',
            reportedAt: t(),
          },
        };
  await kube.request('PATCH', `${EmbeddingJobClient.collectionPath(ns)}/${ej}/status`, {
    body: { status },
    contentType: MERGE_PATCH,
  });
}

export function message(i: number, over: Record<string, unknown> = {}): string {
  const hex = i.toString(16).padStart(12, '0');
  return JSON.stringify({
    image_id: `0000${hex.slice(0, 4)}-0000-4000-8000-${hex}`,
    receipt_id: (i % 50) + 1,
    artifacts_bucket: 'artifacts',
    lines_key: `r/${i}/lines.ndjson`,
    words_key: `r/${i}/words.ndjson`,
    ...over,
  });
}

export type { EmbeddingJob };

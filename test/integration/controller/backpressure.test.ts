// A burst of 1,000 messages: outstanding EmbeddingJobs never exceed the cap (the rest stays in SQS) and Pending
// (unschedulable) pods count toward the worker cap, so nothing over-scales. Finished items free capacity and are
// deleted after their TTL.
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import type { KubeRest } from '../../../core/kube/rest.js';
import { jobFinished, parseMembers } from '../../../controller/worker-job.js';
import {
  applyCrd,
  createNamespace,
  createQueues,
  exited,
  kubeFor,
  listEjs,
  listJobs,
  listPods,
  message,
  queueDepth,
  report,
  sqsClient,
  startController,
  testConfig,
  waitFor,
  type Running,
} from './helpers.js';

const env = inject('testEnv');
let kube: KubeRest;
let ctl: Running | undefined;
const MAX_OUTSTANDING = 200;
const MAX_PODS = 4;

beforeAll(async () => {
  kube = await kubeFor(env);
  await applyCrd(kube);
});
afterAll(async () => {
  await ctl?.stop();
});

describe('backpressure under a burst of 1,000 messages', () => {
  it('caps outstanding EmbeddingJobs and active worker pods, Pending pods included', async () => {
    const ns = await createNamespace(kube, 'ctl-burst');
    const q = await createQueues(env, 'burst');
    const sqs = sqsClient(env);
    await Promise.all(
      Array.from({ length: 100 }, (_, b) =>
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: q.url,
            Entries: Array.from({ length: 10 }, (_, k) => ({
              Id: String(k),
              MessageBody: message(10_000 + b * 10 + k),
            })),
          }),
        ),
      ),
    );
    ctl = startController({
      kube,
      queue: q.queue,
      config: testConfig(ns, q, env, {
        ingest: { pollers: 4, maxOutstanding: MAX_OUTSTANDING, visibilitySeconds: 30 },
        dispatch: { batchSize: 10, batchWindowSeconds: 0.2, maxActivePods: MAX_PODS },
        status: { finishedTtlSeconds: 2 },
      }),
    });

    // Sample while it fills up: never more than the caps. A Job is active until it finishes or has reported every
    // member (then its pod only has to exit, and the dispatcher reuses the slot: controller/job-index.ts).
    const samples: { ejs: number; active: number }[] = [];
    const sample = async () => {
      const [ejs, jobs] = await Promise.all([listEjs(kube, ns), listJobs(kube, ns)]);
      const reportedBy = new Map(ejs.map((e) => [e.metadata.name, e.status?.report?.workerJob]));
      const active = jobs.filter(
        (j) => !jobFinished(j) && !parseMembers(j).every((m) => reportedBy.get(m.name) === j.metadata.name),
      );
      samples.push({ ejs: ejs.length, active: active.length });
    };
    await waitFor(
      async () => (await sample(), samples.at(-1)!.ejs >= MAX_OUTSTANDING),
      60_000,
      'the cap to fill',
    );
    for (let i = 0; i < 10; i++) {
      await sample();
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(Math.max(...samples.map((s) => s.ejs))).toBe(MAX_OUTSTANDING);
    expect(Math.max(...samples.map((s) => s.active))).toBe(MAX_PODS);
    const diag = async () =>
      [
        await queueDepth(env, q.url),
        await ctl!.app.registry.getSingleMetricAsString('embedctl_ingest_messages_total'),
        await ctl!.app.registry.getSingleMetricAsString('embedctl_outstanding_embeddingjobs'),
        await ctl!.app.registry.getSingleMetricAsString('embedctl_ingest_paused'),
        JSON.stringify(
          (await listEjs(kube, ns)).reduce<Record<string, number>>(
            (a, e) => ((a[e.status?.phase ?? '-'] = (a[e.status?.phase ?? '-'] ?? 0) + 1), a),
            {},
          ),
        ),
      ].join('\n');
    // The rest stays in SQS. (≥: the SDK may retry a slow SendMessageBatch, so moto can hold a few duplicates.)
    const metric = (name: string) => ctl!.app.registry.getSingleMetricAsString(name);
    // Exactly the cap was created; a duplicate delivery of one of them (moto may hold the SDK's retried sends) is
    // received and recognised, but takes no slot and creates nothing.
    const counts = await metric('embedctl_ingest_messages_total');
    const count = (result: string) => Number(new RegExp(`result="${result}"} (\\d+)`).exec(counts)?.[1] ?? 0);
    expect(count('created')).toBe(MAX_OUTSTANDING);
    expect(count('received')).toBe(count('created') + count('duplicate'));
    expect(count('dead_lettered')).toBe(0);
    const backlog = await queueDepth(env, q.url);
    expect(backlog).toBeGreaterThanOrEqual(1000 - MAX_OUTSTANDING);
    const pods = await listPods(kube, ns);
    expect(pods.every((p) => (p.status?.phase ?? 'Pending') === 'Pending')).toBe(true); // no scheduler: all Pending
    expect(await ctl.app.registry.getSingleMetricAsString('embedctl_ingest_paused')).toMatch(
      /embedctl_ingest_paused 1/,
    );

    // Finish the running batches as the worker and kubelet would: capacity frees, more Jobs start, still capped.
    const finishBatch = async () => {
      const jobs = (await listJobs(kube, ns)).filter((j) => !jobFinished(j));
      await Promise.all(
        jobs.map(async (j) => {
          await Promise.all(
            parseMembers(j).map((m) => report(kube, ns, m.name, j.metadata.name, 'Succeeded')),
          );
          const pod = await waitFor(
            async () => (await listPods(kube, ns, j.metadata.name))[0],
            30_000,
            'pod',
          );
          await kube.request('PATCH', `/api/v1/namespaces/${ns}/pods/${pod.metadata.name}/status`, {
            body: { status: exited(0) },
            contentType: 'application/merge-patch+json',
          });
        }),
      );
      return jobs.length;
    };
    const finished = await finishBatch();
    expect(finished).toBe(MAX_PODS);
    await waitFor(
      async () => {
        await sample();
        const jobs = await listJobs(kube, ns);
        return jobs.length >= MAX_PODS * 2 ? jobs : undefined;
      },
      60_000,
      'a second wave of Jobs',
    );
    expect(Math.max(...samples.map((s) => s.active))).toBe(MAX_PODS);
    // The 40 succeeded EmbeddingJobs are deleted after their 2 s TTL; the queue keeps draining into the freed room.
    await waitFor(
      async () =>
        Number(/result="received"} (\d+)/.exec(await metric('embedctl_ingest_messages_total'))?.[1]) >
        MAX_OUTSTANDING,
      60_000,
      'more messages admitted',
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await diag()}`);
    });
    const ejs = await listEjs(kube, ns);
    expect(ejs.filter((e) => e.status?.phase !== 'Succeeded').length).toBeLessThanOrEqual(MAX_OUTSTANDING);
  });
});

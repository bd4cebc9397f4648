// Message → EmbeddingJob → worker Job → status, against the real apiserver (with the real Job controller) and SQS.
// There is no kubelet: the test writes pod status as the kubelet would, and reports as the worker would.
import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { embeddingJobName } from '../../../core/contracts/embedding-job.js';
import type { KubeRest } from '../../../core/kube/rest.js';
import { parseMembers } from '../../../controller/worker-job.js';
import {
  applyCrd,
  createNamespace,
  createQueues,
  drainDlq,
  exited,
  getEj,
  kubeFor,
  listEjs,
  listJobs,
  listPods,
  message,
  queueDepth,
  report,
  running,
  setPodStatus,
  sqsClient,
  startController,
  testConfig,
  waitFor,
  type Running,
} from './helpers.js';

const env = inject('testEnv');
let kube: KubeRest;
let ns: string;
let q: Awaited<ReturnType<typeof createQueues>>;
let ctl: Running;

beforeAll(async () => {
  kube = await kubeFor(env);
  await applyCrd(kube);
  ns = await createNamespace(kube, 'ctl-pipeline');
  q = await createQueues(env, 'pipeline');
  ctl = startController({
    kube,
    queue: q.queue,
    config: testConfig(ns, q, env, { status: { maxAttempts: 2 } }),
  });
});

afterAll(async () => {
  await ctl?.stop();
});

const send = (body: string) =>
  sqsClient(env).send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }));
const nameOf = (i: number) =>
  embeddingJobName(JSON.parse(message(i)) as Parameters<typeof embeddingJobName>[0]);

async function podOf(job: string) {
  return waitFor(async () => (await listPods(kube, ns, job))[0], 30_000, `pod of ${job}`);
}

async function jobOf(ej: string) {
  return waitFor(async () => (await getEj(kube, ns, ej))?.status?.workerJob, 30_000, `worker Job of ${ej}`);
}

async function phaseOf(ej: string, phase: string, timeout = 30_000) {
  return waitFor(
    async () => {
      const o = await getEj(kube, ns, ej);
      return o?.status?.phase === phase ? o : undefined;
    },
    timeout,
    `${ej} to be ${phase}`,
  );
}

describe('ingest', () => {
  it('turns a message into one EmbeddingJob and a worker Job with the expected spec, and deletes the message', async () => {
    await send(message(1));
    const name = nameOf(1);
    const ej = await phaseOf(name, 'Scheduled');
    expect(ej.spec).toMatchObject({ receiptId: 2, artifactsBucket: 'artifacts', source: 'sqs' });
    expect(ej.status?.attempts).toBe(1);
    expect(ej.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({
      status: 'True',
      reason: 'JobCreated',
      observedGeneration: 1,
    });

    const job = (await listJobs(kube, ns)).find((j) => j.metadata.name === ej.status?.workerJob)!;
    const spec = job.spec!;
    expect(parseMembers(job)).toEqual([{ name, attempt: 1 }]);
    expect(job.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'EmbeddingJob', name, uid: ej.metadata.uid }),
    ]);
    expect(spec.template.spec?.containers[0]?.args).toEqual(['worker', '--jobs', name, '--namespace', ns]);
    expect(spec.podFailurePolicy?.rules[0]?.onExitCodes?.values).toEqual([2, 3]);
    expect(spec.backoffLimit).toBe(0);
    expect(spec.template.spec?.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    await waitFor(async () => (await queueDepth(env, q.url)) === 0, 20_000, 'queue to be empty');
  });

  it('creates one EmbeddingJob for a payload delivered three times', async () => {
    const body = message(2);
    await sqsClient(env).send(
      new SendMessageBatchCommand({
        QueueUrl: q.url,
        Entries: [0, 1, 2].map((i) => ({
          Id: String(i),
          MessageBody: i === 2 ? JSON.stringify({ ...JSON.parse(body), extra: 'kept but ignored' }) : body,
        })),
      }),
    );
    await waitFor(async () => (await queueDepth(env, q.url)) === 0, 20_000, 'queue to be empty');
    const mine = (await listEjs(kube, ns)).filter((e) => e.metadata.name === nameOf(2));
    expect(mine).toHaveLength(1);
  });

  it('dead-letters invalid messages with the reason, creating nothing', async () => {
    const before = (await listEjs(kube, ns)).length;
    await send('not json');
    await send(message(3, { receipt_id: 0 }));
    await send(message(4, { image_id: 'nope' }));
    // Issue 18 item 3: a bucket other than the configured one, an access-point ARN, a key leaving its bucket.
    await send(message(5, { artifacts_bucket: 'someone-elses-bucket' }));
    await send(message(6, { artifacts_bucket: 'arn:aws:s3:us-east-1:999999999999:accesspoint/attacker' }));
    await send(message(7, { lines_key: 'r/../../other-bucket/secret' }));
    const dlq = await waitFor(
      async () => {
        const got = await drainDlq(env, q.dlqUrl);
        return got.length >= 6 ? got : undefined;
      },
      30_000,
      'six DLQ messages',
    );
    expect(dlq.map((m) => m.reason)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^InvalidMessage: .*image_id/),
        expect.stringMatching(/^InvalidMessage: .*not JSON/),
        expect.stringMatching(/^InvalidMessage: .*receipt_id/),
        expect.stringMatching(
          /^InvalidMessage: field artifacts_bucket: bucket "someone-elses-bucket" is not an allowed/,
        ),
        expect.stringMatching(
          /^InvalidMessage: field artifacts_bucket: must be a plain DNS-style bucket name/,
        ),
        expect.stringMatching(/^InvalidMessage: field lines_key: /),
      ]),
    );
    expect((await listEjs(kube, ns)).length).toBe(before);
    const metrics = await ctl.app.registry.getSingleMetricAsString('embedctl_ingest_messages_total');
    expect(metrics).toMatch(/result="dead_lettered"} 6/);
  });
});

describe('status', () => {
  it('Scheduled → Running → Succeeded from pod status and the worker report', async () => {
    const name = nameOf(1);
    const job = await jobOf(name);
    const pod = await podOf(job);
    await setPodStatus(kube, ns, pod.metadata.name, running());
    await phaseOf(name, 'Running');
    await report(kube, ns, name, job, 'Succeeded');
    await setPodStatus(kube, ns, pod.metadata.name, exited(0));
    const ej = await phaseOf(name, 'Succeeded');
    expect(ej.status?.result?.words).toBe(7);
    expect(ej.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({
      status: 'True',
      reason: 'Completed',
    });
    expect(ej.status?.completionTime).toBeTruthy();
    // Events are recorded asynchronously after the status write.
    const reasons = async () =>
      (
        await kube.request<{ items: { reason: string }[] }>('GET', `/api/v1/namespaces/${ns}/events`, {
          query: { fieldSelector: `involvedObject.name=${name}` },
        })
      ).items.map((e) => e.reason);
    await expect.poll(reasons, { timeout: 10_000 }).toEqual(['Succeeded']);
  });

  it('exit code 2 fails the item as BadInput without a retry (podFailurePolicy FailJob)', async () => {
    await send(message(10));
    const name = nameOf(10);
    const job = await jobOf(name);
    const pod = await podOf(job);
    await setPodStatus(kube, ns, pod.metadata.name, running());
    await setPodStatus(kube, ns, pod.metadata.name, exited(2));
    const ej = await phaseOf(name, 'Failed');
    expect(ej.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({
      status: 'True',
      reason: 'BadInput',
    });
    expect(ej.status?.attempts).toBe(1);
    const events = async () =>
      (
        await kube.request<{ items: { reason: string; type: string }[] }>(
          'GET',
          `/api/v1/namespaces/${ns}/events`,
          {
            query: { fieldSelector: `involvedObject.name=${name}` },
          },
        )
      ).items;
    await expect
      .poll(events, { timeout: 10_000 })
      .toEqual([expect.objectContaining({ type: 'Warning', reason: 'BadInput' })]);
  });

  it('a per-item BadInput report fails that item only', async () => {
    await send(message(11));
    const name = nameOf(11);
    const job = await jobOf(name);
    await report(kube, ns, name, job, 'Failed', 'BadInput');
    const ej = await phaseOf(name, 'Failed');
    expect(ej.status?.conditions?.find((c) => c.type === 'Failed')?.message).toContain('row 2');
  });

  it('retries a retryable failure in a new Job with backoff, then fails terminally after maxAttempts', async () => {
    await send(message(12));
    const name = nameOf(12);
    const job1 = await jobOf(name);
    const pod1 = await podOf(job1);
    await setPodStatus(kube, ns, pod1.metadata.name, exited(137, 'OOMKilled'));
    const pending = await phaseOf(name, 'Pending');
    expect(pending.status?.conditions?.find((c) => c.type === 'Retrying')).toMatchObject({
      status: 'True',
      reason: 'OOMKilled',
    });
    expect(pending.status?.nextAttemptTime).toBeTruthy();

    const again = await waitFor(
      async () => {
        const o = await getEj(kube, ns, name);
        return o?.status?.attempts === 2 && o.status.workerJob !== job1 ? o : undefined;
      },
      30_000,
      'second attempt',
    );
    const job2 = again.status!.workerJob!;
    const pod2 = await podOf(job2);
    await setPodStatus(kube, ns, pod2.metadata.name, exited(1));
    const failed = await phaseOf(name, 'Failed');
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({
      reason: 'WorkerError',
    });
    expect(failed.status?.message).toContain('gave up after 2 attempt(s)');
  });

  it('a worker Job deleted mid-run returns its item to Pending and it is dispatched again', async () => {
    await send(message(13));
    const name = nameOf(13);
    const job1 = await jobOf(name);
    await kube.request('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/${job1}`, {
      body: { propagationPolicy: 'Background' },
    });
    const again = await waitFor(
      async () => {
        const o = await getEj(kube, ns, name);
        return o?.status?.attempts === 2 && o.status.phase === 'Scheduled' ? o : undefined;
      },
      30_000,
      'redispatch after the Job vanished',
    );
    expect(again.status?.workerJob).not.toBe(job1);
  });
});

// A worker pod that Pod Security "restricted" rejects: the Job is accepted, its pods never get created
// (FailedCreate events). The EmbeddingJob must say so (Failed, PodRejected) instead of waiting forever.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { embeddingJobName } from '../../../core/contracts/embedding-job.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { synthToDir } from '../../../cdk8s/app.js';
import { loadEnvironment } from '../../../cdk8s/config.js';
import { fromKubeconfig } from '../../../core/kube/credentials.js';
import { isAlreadyExists, KubeRest } from '../../../core/kube/rest.js';
import { WorkerSettings } from '../../../controller/config.js';
import {
  applyCrd,
  createNamespace,
  createQueues,
  getEj,
  kubeFor,
  listJobs,
  message,
  sqsClient,
  startController,
  testConfig,
  waitFor,
  type Running,
} from './helpers.js';

const env = inject('testEnv');
let kube: KubeRest;
let ctl: Running | undefined;

beforeAll(async () => {
  kube = await kubeFor(env);
  await applyCrd(kube);
});
afterAll(async () => {
  await ctl?.stop();
});

type Ej = NonNullable<Awaited<ReturnType<typeof getEj>>>;

/** Sends the EMBED message of `receipt` and waits until its EmbeddingJob satisfies `done`. */
async function announceUntil(
  ns: string,
  q: Awaited<ReturnType<typeof createQueues>>,
  receipt: number,
  done: (ej: Ej) => boolean,
  what: string,
): Promise<{ name: string; ej: Ej }> {
  const body = message(receipt);
  await sqsClient(env).send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }));
  const name = embeddingJobName(JSON.parse(body) as Parameters<typeof embeddingJobName>[0]);
  const ej = await waitFor(
    async () => {
      const o = await getEj(kube, ns, name);
      return o && done(o) ? o : undefined;
    },
    60_000,
    what,
  );
  return { name, ej };
}

describe('admission', () => {
  it('fails the EmbeddingJob with PodRejected and deletes the Job when Pod Security rejects the pod', async () => {
    const ns = await createNamespace(kube, 'ctl-pss', { 'pod-security.kubernetes.io/enforce': 'restricted' });
    const q = await createQueues(env, 'pss');
    const worker = WorkerSettings.parse({
      image: 'embedctl:test',
      containerSecurityContext: { allowPrivilegeEscalation: true },
    });
    ctl = startController({
      kube,
      queue: q.queue,
      worker,
      config: testConfig(ns, q, env, { status: { podRejectedGraceSeconds: 1 } }),
    });
    const { ej } = await announceUntil(ns, q, 500, (ej) => ej.status?.phase === 'Failed', 'Failed');
    const failed = ej.status?.conditions?.find((c) => c.type === 'Failed');
    expect(failed).toMatchObject({ status: 'True', reason: 'PodRejected' });
    expect(failed?.message).toMatch(/PodSecurity|forbidden/i);
    await waitFor(async () => (await listJobs(kube, ns)).length === 0, 30_000, 'the Job to be deleted');
  });

  // The audit found the chart's controller Role without `list events`: the FailedCreate lookup got a 403 and the
  // reconcile retried forever. Here the controller runs with that Role's token, not the admin kubeconfig.
  it('with the charts controller Role (its own token), a rejected pod still ends PodRejected', async () => {
    const ns = await createNamespace(kube, 'ctl-rbac', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    const dir = mkdtempSync(join(tmpdir(), 'rbac-chart-'));
    synthToDir(loadEnvironment('dev', { namespace: ns, iam: {} }), dir);
    const paths: Record<string, string> = {
      ServiceAccount: `/api/v1/namespaces/${ns}/serviceaccounts`,
      Role: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
      RoleBinding: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
    };
    for (const d of parseAllDocuments(readFileSync(join(dir, '0003-rbac.k8s.yaml'), 'utf8'))) {
      const o = d.toJSON() as { kind: string };
      if (!paths[o.kind]) continue;
      await kube.request('POST', paths[o.kind]!, { body: o }).catch((err: unknown) => {
        if (!isAlreadyExists(err)) throw err;
      });
    }
    const { status } = await kube.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/embedctl-controller/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      },
    );
    const admin = fromKubeconfig(env.kubeconfigPath)!;
    const asController = KubeRest.fromCredentials({
      server: admin.server,
      ...(admin.ca ? { ca: admin.ca } : {}),
      ...(admin.skipTLSVerify ? { skipTLSVerify: true } : {}),
      token: status.token,
    });
    const q = await createQueues(env, 'rbac');
    const run = startController({
      kube: asController,
      queue: q.queue,
      worker: WorkerSettings.parse({
        image: 'embedctl:test',
        containerSecurityContext: { allowPrivilegeEscalation: true },
      }),
      config: testConfig(ns, q, env, { status: { podRejectedGraceSeconds: 1 } }),
    });
    try {
      const { ej } = await announceUntil(
        ns,
        q,
        700,
        (ej) => ej.status?.phase === 'Failed',
        'Failed (PodRejected) under the charts controller Role',
      );
      expect(ej.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({
        reason: 'PodRejected',
      });
    } finally {
      await run.stop();
      asController.close();
    }
  });

  // The worker ConfigMap is the escalation path of security issue 18 item 1: whoever edits it must not get worker
  // pods that run as another ServiceAccount or another image. The controller refuses it and says so on the item.
  it.each([
    { key: 'serviceAccountName', data: { serviceAccountName: 'embedctl-compactor' } },
    { key: 'image', data: { image: 'evil.example/miner:latest' } },
  ])(
    'refuses a worker ConfigMap naming another $key, with the reason on the EmbeddingJob',
    async ({ key, data }) => {
      const ns = await createNamespace(kube, 'ctl-wcm');
      const q = await createQueues(env, `wcm-${key.slice(0, 5).toLowerCase()}`);
      await kube.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
        body: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'embedctl-worker' },
          data: { image: 'embedctl:test', serviceAccountName: 'embedctl-worker', ...data },
        },
      });
      const run = startController({
        kube,
        queue: q.queue,
        worker: undefined, // read the ConfigMap, as in a cluster
        config: testConfig(ns, q, env, { workerPolicy: { allowedImages: ['embedctl'] } }),
      });
      try {
        const { name, ej } = await announceUntil(
          ns,
          q,
          600,
          (ej) => !!ej.status?.conditions?.some((c) => c.reason === 'WorkerConfigRefused'),
          'the WorkerConfigRefused condition',
        );
        const c = ej.status?.conditions?.find((x) => x.type === 'Scheduled');
        expect(c).toMatchObject({ status: 'False', reason: 'WorkerConfigRefused' });
        expect(c?.message).toContain(`${key}:`);
        expect(ej.status?.phase ?? 'Pending').toBe('Pending');
        expect(await listJobs(kube, ns)).toEqual([]);
        const events = await kube.request<{ items: { reason?: string; message?: string }[] }>(
          'GET',
          `/api/v1/namespaces/${ns}/events`,
          { query: { fieldSelector: `involvedObject.name=${name},reason=WorkerConfigRefused` } },
        );
        expect(events.items[0]?.message).toContain(`${key}:`);
      } finally {
        await run.stop();
      }
    },
  );
});

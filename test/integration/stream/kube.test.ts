// Kubernetes adapters of the stream processor and compactor against a real kube-apiserver: the EmbeddingJob
// compaction report (status.compaction + Compacted condition), ConfigMap checkpoints, and the coordination.k8s.io
// Lease with fencing tokens.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { API_VERSION, type EmbeddingJob } from '../../../core/contracts/embedding-job.js';
import { makeKubeClient } from '../../../core/kube/client.js';
import { EmbeddingJobClient } from '../../../core/kube/embedding-jobs.js';
import { leases } from '../../../core/kube/objects.js';
import { applyCrd } from '../controller/helpers.js';
import { KubeLeaseBackend } from '../../../core/lease/kube-lease.js';
import { FencedLease, LeaseLostError } from '../../../core/lease/lease.js';
import { ConfigMapCheckpointStore } from '../../../stream/configmap-checkpoint.js';
import { KubeJobStatusSink } from '../../../stream/job-status.js';

const env = inject('testEnv');
const kube = makeKubeClient({ kubeconfig: env.kubeconfigPath });
const jobs = new EmbeddingJobClient(kube);
const namespace = `stream-${Date.now().toString(36)}`;
const IMG = '3f2a1b4c-0000-4000-8000-000000000001';

async function getJob(name: string): Promise<EmbeddingJob> {
  return (await jobs.get(namespace, name))!;
}

/** An EmbeddingJob as `kubectl apply` creates it: spec only (the defaults are the CRD's). */
async function createJob(name: string, receiptId: number): Promise<void> {
  await kube.request('POST', EmbeddingJobClient.collectionPath(namespace), {
    body: {
      apiVersion: API_VERSION,
      kind: 'EmbeddingJob',
      metadata: { name },
      spec: { imageId: IMG, receiptId, artifactsBucket: 'bkt', linesKey: 'l', wordsKey: 'w' },
    },
  });
}

beforeAll(async () => {
  await applyCrd(kube);
  await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  for (let i = 0; i < 100; i++) {
    try {
      await jobs.list(namespace);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
afterAll(async () => {
  await kube.request('DELETE', `/api/v1/namespaces/${namespace}`);
});

describe('KubeJobStatusSink', () => {
  it('records status.compaction per collection and a Compacted condition; Completed never moves back; 404 is fine', async () => {
    const name = 'ej-3f2a1b4c-1-abcdef01';
    await createJob(name, 1);
    const sink = new KubeJobStatusSink(kube, namespace);
    const base = { jobName: name, runId: 'r1', imageId: IMG, receiptId: 1 };
    await sink.report({ ...base, collection: 'lines', state: 'Completed', mergedVectors: 3 });
    let job = await getJob(name);
    expect(job.status?.compaction).toEqual({ lines: 'Completed' });
    expect(job.status?.conditions?.find((c) => c.type === 'Compacted')).toMatchObject({
      status: 'False',
      reason: 'CompactionPending',
    });

    await sink.report({ ...base, collection: 'words', state: 'Completed', mergedVectors: 9 });
    job = await getJob(name);
    expect(job.status?.compaction).toEqual({ lines: 'Completed', words: 'Completed' });
    expect(job.status?.conditions?.find((c) => c.type === 'Compacted')).toMatchObject({
      status: 'True',
      reason: 'Compacted',
    });

    // A late FAILED for a redelivered run does not undo a merge.
    await sink.report({ ...base, collection: 'words', state: 'Failed', error: 'late' });
    expect((await getJob(name)).status?.compaction?.words).toBe('Completed');

    await sink.report({ ...base, jobName: 'ej-gone', collection: 'lines', state: 'Completed' });
  });

  it('a failed collection makes Compacted False with reason CompactionFailed naming the error', async () => {
    const name = 'ej-3f2a1b4c-2-abcdef02';
    await createJob(name, 2);
    const sink = new KubeJobStatusSink(kube, namespace);
    await sink.report({
      jobName: name,
      runId: 'r2',
      imageId: IMG,
      receiptId: 2,
      collection: 'lines',
      state: 'Failed',
      error: 'DeltaCorrupt: sha256 mismatch',
    });
    const job = await getJob(name);
    expect(job.status?.compaction?.lines).toBe('Failed');
    expect(job.status?.conditions?.find((c) => c.type === 'Compacted')).toMatchObject({
      status: 'False',
      reason: 'CompactionFailed',
      message: expect.stringContaining('sha256 mismatch'),
    });
  });
});

describe('ConfigMapCheckpointStore', () => {
  it('round-trips checkpoints and refuses a writer that no longer leads', async () => {
    let aLeads = true;
    const a = new ConfigMapCheckpointStore(kube, namespace, 'stream-checkpoint', { isLeader: () => aLeads });
    expect(await a.load()).toEqual({ shards: {} });
    await a.save({ streamArn: 'arn:x', shards: { s1: { seq: '10' } } });
    await a.save({ streamArn: 'arn:x', shards: { s1: { seq: '11' }, s0: { done: true } } });
    const b = new ConfigMapCheckpointStore(kube, namespace, 'stream-checkpoint');
    expect(await b.load()).toEqual({ streamArn: 'arn:x', shards: { s1: { seq: '11' }, s0: { done: true } } });
    await b.save({ streamArn: 'arn:x', shards: { s1: { seq: '12' } } });
    // a (a deposed leader) still holds the old resourceVersion; it would re-read on the 409, but it no longer leads:
    // its write fails instead of moving the checkpoint back (checkpoint.test.ts covers the real Lease).
    aLeads = false;
    await expect(a.save({ streamArn: 'arn:x', shards: { s1: { seq: '5' } } })).rejects.toThrow();
    expect(
      (await new ConfigMapCheckpointStore(kube, namespace, 'stream-checkpoint').load()).shards.s1,
    ).toEqual({ seq: '12' });
  });
});

describe('KubeLeaseBackend', () => {
  it('one holder; tokens from leaseTransitions; a stale holder is fenced after expiry', async () => {
    const mk = (id: string) =>
      new FencedLease(new KubeLeaseBackend(kube, namespace, 'embedctl-compactor'), {
        identity: id,
        durationMs: 2000,
        renewEveryMs: 60_000,
      });
    const a = mk('pod-a');
    const b = mk('pod-b');
    const ta = await a.tryAcquire();
    expect(ta).toBe(1);
    expect(await b.tryAcquire()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2600)); // a does not renew (renewEveryMs is long): it expires
    const tb = await b.tryAcquire();
    expect(tb).toBe(2);
    await expect(a.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await b.assertHeld()).toBe(2);
    const lease = await leases(kube).get(namespace, 'embedctl-compactor');
    expect(lease?.spec).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 2 });
    await b.release();
  });
});

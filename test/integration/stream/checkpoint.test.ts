// The stream checkpoint ConfigMap against a real kube-apiserver: a foreign write (kubectl edit, a deposed leader's
// late write) between two commits is re-read and overwritten with our position instead of 409-ing forever, and a
// writer that lost its Lease writes nothing.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { DynamoStreamFeed, type Checkpoint } from '../../../core/aws/dynamo-stream-feed.js';
import { makeKubeClient } from '../../../core/kube/client.js';
import { LeaderElector } from '../../../core/kube/leader-election.js';
import { configMaps } from '../../../core/kube/objects.js';
import { microTime } from '../../../core/lease/kube-lease.js';
import type { OutgoingMessage, Queue } from '../../../core/ports/queue.js';
import {
  CHECKPOINT_WRITER_ANNOTATION,
  CheckpointFencedError,
  ConfigMapCheckpointStore,
} from '../../../stream/configmap-checkpoint.js';
import { StreamProcessor } from '../../../stream/processor.js';
import { FakeStreams } from '../../support/fake-streams.js';

const env = inject('testEnv');
const kubeClient = makeKubeClient({ kubeconfig: env.kubeconfigPath });
const cms = configMaps(kubeClient);
const namespace = `stream-cp-${Date.now().toString(36)}`;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  await kubeClient.request('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
});
afterAll(async () => {
  await kubeClient.request('DELETE', `/api/v1/namespaces/${namespace}`);
});

async function stored(name: string): Promise<{ cp: Checkpoint; writer?: string; rv?: string }> {
  const cm = (await cms.get(namespace, name))!;
  return {
    cp: JSON.parse(cm.data!['checkpoint.json']!) as Checkpoint,
    writer: cm.metadata?.annotations?.[CHECKPOINT_WRITER_ANNOTATION],
    rv: cm.metadata?.resourceVersion,
  };
}

/** What `kubectl edit` does: read, change the data, replace with the read resourceVersion. */
async function foreignEdit(name: string, checkpoint: Checkpoint): Promise<void> {
  const cm = (await cms.get(namespace, name))!;
  cm.data = { 'checkpoint.json': JSON.stringify(checkpoint) };
  cm.metadata!.annotations = { ...cm.metadata!.annotations, [CHECKPOINT_WRITER_ANNOTATION]: 'kubectl' };
  await cms.replace(namespace, name, cm);
}

/** A queue that records every message it accepts (keyed by the stream record it came from). */
function countingQueue(sent: Map<string, number>): Queue {
  return {
    name: 'counting',
    send: async (messages: OutgoingMessage[]) => {
      for (const m of messages) {
        const id = (JSON.parse(m.body) as { stream_record_id: string }).stream_record_id;
        sent.set(id, (sent.get(id) ?? 0) + 1);
      }
    },
  } as unknown as Queue;
}

function processorFor(fake: FakeStreams, store: ConfigMapCheckpointStore, sent: Map<string, number>) {
  const queue = countingQueue(sent);
  return new StreamProcessor({
    feed: new DynamoStreamFeed({
      streamArn: 'arn:stream',
      checkpoints: store,
      client: fake,
      idleMs: 1,
      describeEveryMs: 0,
    }),
    queues: { lines: queue, words: queue },
    log,
    batchLimit: 2,
    maxBackoffMs: 50,
  });
}

describe('ConfigMapCheckpointStore under foreign writes and lost leadership', () => {
  it('a foreign write between two commits: the next commit re-reads, writes our position, and no batch is sent twice', async () => {
    const name = 'cp-foreign-write';
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3', '4'], closed: false }];
    const sent = new Map<string, number>();
    const store = new ConfigMapCheckpointStore(kubeClient, namespace, name, {
      identity: 'pod-a',
      isLeader: () => true,
      log,
    });
    const processor = processorFor(fake, store, sent);

    expect(await processor.runOnce(AbortSignal.timeout(10_000))).toBe(2);
    expect(await stored(name)).toMatchObject({ cp: { shards: { s: { seq: '2' } } }, writer: 'pod-a' });

    // kubectl edit (or a deposed leader's late write) lands: an older seq and a shard we never saw.
    await foreignEdit(name, { streamArn: 'arn:stream', shards: { s: { seq: '1' }, ghost: { seq: '99' } } });

    // Before the fix this commit 409-ed forever (the cached resourceVersion was never refreshed) until the abort.
    expect(await processor.runOnce(AbortSignal.timeout(10_000))).toBe(2);
    const after = await stored(name);
    expect(after.cp.shards).toEqual({ s: { seq: '4' } }); // our handled position; the foreign-only shard dropped
    expect(after.writer).toBe('pod-a');

    fake.shards[0]!.records.push('5');
    expect(await processor.runOnce(AbortSignal.timeout(10_000))).toBe(1);
    expect((await stored(name)).cp.shards).toEqual({ s: { seq: '5' } });

    // A new leader resumes after 5: nothing is replayed.
    const next = processorFor(
      fake,
      new ConfigMapCheckpointStore(kubeClient, namespace, name, { identity: 'pod-b', isLeader: () => true }),
      sent,
    );
    expect(await next.runOnce(AbortSignal.timeout(10_000))).toBe(0);

    // Every record was sent exactly once per collection (lines + words): no batch re-sent.
    expect(Object.fromEntries(sent)).toEqual({ 'ev-1': 2, 'ev-2': 2, 'ev-3': 2, 'ev-4': 2, 'ev-5': 2 });
  });

  it('a writer whose Lease was taken writes nothing: save refuses, and its processor stops without a commit', async () => {
    const name = 'cp-deposed';
    const leaseName = 'cp-deposed-leader';
    const kube = await makeKubeClient({ kubeconfig: env.kubeconfigPath });
    const electorA = new LeaderElector(kube, {
      namespace,
      name: leaseName,
      identity: 'pod-a',
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 200,
      log,
    });
    const stopA = new AbortController();
    expect(await electorA.acquire(stopA.signal)).toBe(true);
    const holding = electorA.hold(stopA.signal);

    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3'], closed: false }];
    const sent = new Map<string, number>();
    const storeA = new ConfigMapCheckpointStore(kubeClient, namespace, name, {
      identity: 'pod-a',
      isLeader: () => electorA.isLeader(),
      log,
    });
    const processorA = processorFor(fake, storeA, sent);
    expect(await processorA.runOnce(AbortSignal.timeout(10_000))).toBe(2);
    expect((await stored(name)).cp.shards).toEqual({ s: { seq: '2' } });

    // pod-b takes the Lease (as after pod-a's pause past expiry); pod-a notices on its next renewal.
    // (Raw JSON: client-node would re-serialize the MicroTime fields with milliseconds, which the apiserver refuses.)
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseName}`;
    const lease = await kube.request<{ spec: Record<string, unknown> }>('GET', path);
    lease.spec = { ...lease.spec, holderIdentity: 'pod-b', renewTime: microTime() };
    await kube.request('PUT', path, { body: lease });
    expect(await holding).toBe('lost');
    expect(electorA.isLeader()).toBe(false);

    // The new leader commits its own position.
    const storeB = new ConfigMapCheckpointStore(kubeClient, namespace, name, {
      identity: 'pod-b',
      isLeader: () => true,
    });
    await storeB.load();
    await storeB.save({ streamArn: 'arn:stream', shards: { s: { seq: '3' } } });
    const before = await stored(name);
    expect(before.writer).toBe('pod-b');

    // The deposed store refuses outright (even though it could re-read and overwrite on the 409).
    await expect(
      storeA.save({ streamArn: 'arn:stream', shards: { s: { seq: '2' } } }),
    ).rejects.toBeInstanceOf(CheckpointFencedError);
    // An aborted leader signal fences the same way.
    const aborted = new ConfigMapCheckpointStore(kubeClient, namespace, name, {
      identity: 'pod-a',
      signal: AbortSignal.abort(),
    });
    await expect(aborted.save({ shards: {} })).rejects.toBeInstanceOf(CheckpointFencedError);

    // Its processor, handed the next batch, stops at the commit instead of retrying it.
    const run = processorA.run(AbortSignal.timeout(10_000));
    const started = Date.now();
    await run;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await stored(name)).toEqual(before); // same content, writer and resourceVersion: nothing written
    stopA.abort();
  });
});

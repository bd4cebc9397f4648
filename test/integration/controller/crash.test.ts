// Crashes at the two dangerous points leave nothing duplicated and nothing lost after a restart.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import '../../harness/env.js';
import { embeddingJobName } from '../../../core/contracts/embedding-job.js';
import type { Kube, KubeRest } from '../../../core/kube/rest.js';
import { parseMembers } from '../../../controller/worker-job.js';
import {
  applyCrd,
  createNamespace,
  createQueues,
  getEj,
  kubeFor,
  listEjs,
  listJobs,
  message,
  queueDepth,
  sqsClient,
  startController,
  testConfig,
  waitFor,
  type Running,
} from './helpers.js';

const env = inject('testEnv');
let kube: KubeRest;
const running: Running[] = [];

beforeAll(async () => {
  kube = await kubeFor(env);
  await applyCrd(kube);
});
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
});

class Crash extends Error {}

describe('crash recovery', () => {
  it('between CR creation and message deletion: after restart, one CR and the message is gone', async () => {
    const ns = await createNamespace(kube, 'ctl-crash-ingest');
    const q = await createQueues(env, 'crash-ingest');
    const config = testConfig(ns, q, env, { ingest: { pollers: 1, visibilitySeconds: 2 } });
    let crashed!: () => void;
    const crashedAt = new Promise<void>((r) => (crashed = r));
    const first = startController({
      kube,
      queue: q.queue,
      config,
      hooks: {
        afterCreate: () => {
          crashed();
          throw new Crash('simulated crash after the CR was stored');
        },
      },
    });
    running.push(first);
    const body = message(100);
    await sqsClient(env).send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body }));
    await crashedAt;
    await first.stop();
    const name = embeddingJobName(JSON.parse(body) as Parameters<typeof embeddingJobName>[0]);
    expect(await getEj(kube, ns, name)).toBeDefined();
    expect(await queueDepth(env, q.url)).toBe(1); // not deleted: it comes back after its visibility timeout

    const second = startController({ kube, queue: q.queue, config });
    running.push(second);
    // Both, not the depth alone: a clean-clone CI run read the depth as 0 while the message was still there, at the
    // moment its visibility timeout ended (test/harness/sqs-depth.ts), before the second controller had received it.
    const counted = async () =>
      /result="duplicate"} 1/.test(
        await second.app.registry.getSingleMetricAsString('embedctl_ingest_messages_total'),
      );
    await waitFor(
      async () => (await counted()) && (await queueDepth(env, q.url)) === 0,
      30_000,
      'the redelivered message to be seen as a duplicate and deleted',
    );
    expect((await listEjs(kube, ns)).map((e) => e.metadata.name)).toEqual([name]);
    await waitFor(
      async () => (await getEj(kube, ns, name))?.status?.phase === 'Scheduled',
      30_000,
      'Scheduled',
    );
    expect(await listJobs(kube, ns)).toHaveLength(1);
    await second.stop();
  });

  it('between Job creation and status update: after restart, the Job is adopted, not created again', async () => {
    const ns = await createNamespace(kube, 'ctl-crash-dispatch');
    const q = await createQueues(env, 'crash-dispatch');
    const config = testConfig(ns, q, env, { dispatch: { batchSize: 3, batchWindowSeconds: 0.5 } });
    let crashed!: (job: string) => void;
    const crashedAt = new Promise<string>((r) => (crashed = r));
    const ctl = new AbortController();
    // A crashed process sends nothing more: once its Job create is on the wire, every later request fails.
    const first = startController({
      kube: severedAtJobCreate(kube, () => ctl.abort()),
      queue: q.queue,
      config,
      hooks: {
        afterJobCreate: (job) => {
          ctl.abort();
          crashed(job);
          throw new Crash('simulated crash after the Job was created');
        },
      },
    });
    running.push(first);
    // Stop the first controller's status reconciler from adopting: the crash hook aborts everything at once.
    const stopFirst = (async () => {
      await new Promise<void>((r) => ctl.signal.addEventListener('abort', () => r(), { once: true }));
      await first.stop();
    })();
    const bodies = [200, 201, 202].map((i) => message(i));
    for (const b of bodies)
      await sqsClient(env).send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: b }));
    const jobName = await crashedAt;
    await stopFirst;
    const names = bodies
      .map((b) => embeddingJobName(JSON.parse(b) as Parameters<typeof embeddingJobName>[0]))
      .sort();
    const jobs = await listJobs(kube, ns);
    expect(jobs.map((j) => j.metadata.name)).toEqual([jobName]);
    const claimed = parseMembers(jobs[0]!).map((m) => m.name);
    const before = await Promise.all(claimed.map((n) => getEj(kube, ns, n)));
    expect(before.filter((e) => e?.status?.workerJob === jobName).length).toBeLessThan(claimed.length); // crashed before status

    const second = startController({ kube, queue: q.queue, config });
    running.push(second);
    await waitFor(
      async () => {
        const ejs = await listEjs(kube, ns);
        return ejs.length === 3 && ejs.every((e) => e.status?.phase === 'Scheduled');
      },
      30_000,
      'all three Scheduled',
    );
    const after = await listJobs(kube, ns);
    const ejs = await listEjs(kube, ns);
    expect(ejs.map((e) => e.metadata.name).sort()).toEqual(names);
    for (const n of claimed)
      expect(ejs.find((e) => e.metadata.name === n)?.status).toMatchObject({
        workerJob: jobName,
        attempts: 1,
      });
    // Every EmbeddingJob is in exactly one Job.
    const membership = after.flatMap((j) => parseMembers(j).map((m) => m.name)).sort();
    expect(membership).toEqual(names);
    await second.stop();
  });
});

/**
 * The process "dies" the moment its Job create is on the wire: that request completes (the apiserver got it), every
 * later request and watch event of this controller is lost. In-process loops (the status reconciler sees the
 * dispatcher's expectation right away) could otherwise write status before the test stops them.
 */
function severedAtJobCreate(kube: Kube, onCrash: () => void): Kube {
  let crashed = false;
  const dead = () => Promise.reject(new Error('simulated crash: the process is gone'));
  return {
    request: (method, path, opts) => {
      if (crashed) return dead();
      if (method === 'POST' && /\/namespaces\/[^/]+\/jobs$/.test(path)) {
        crashed = true;
        onCrash();
      }
      return kube.request(method, path, opts);
    },
    stream: (path, query, onLine, signal) =>
      crashed ? dead() : kube.stream(path, query, (v) => crashed || onLine(v), signal),
  };
}

// Two controller processes: one leader; SIGKILL it and the other takes over within the lease duration; nothing is
// processed twice. Also checks /metrics, /healthz, /readyz of a real process and the Lease release on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import '../../harness/env.js';
import { freePort } from '../../harness/ports.js';
import type { KubeRest } from '../../../core/kube/rest.js';
import { parseMembers } from '../../../controller/worker-job.js';
import {
  applyCrd,
  awsSettings,
  createNamespace,
  createQueues,
  kubeFor,
  listEjs,
  listJobs,
  message,
  queueDepth,
  sqsClient,
  testConfig,
  waitFor,
} from './helpers.js';

const env = inject('testEnv');
let kube: KubeRest;
const procs: ChildProcess[] = [];
const FIXTURE = new URL('./fixtures/controller-process.ts', import.meta.url).pathname;
const LEASE_SECONDS = 4;

beforeAll(async () => {
  kube = await kubeFor(env);
  await applyCrd(kube);
});
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

function spawnController(id: string, config: object, port: number): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: {
      ...process.env,
      CONTROLLER_TEST_CONFIG: JSON.stringify({
        config: { ...config, identity: id, metricsPort: port },
        kubeconfig: env.kubeconfigPath,
        aws: awsSettings(env),
      }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logPath = join(env.tmpDir, `controller-${id}.log`);
  const out = createWriteStream(logPath);
  // CI keeps only the test output: show the tail of each process's log when the test fails.
  onTestFailed(() => {
    console.error(`--- ${id} (exit ${child.exitCode ?? child.signalCode ?? 'running'})\n` + tail(logPath));
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  procs.push(child);
  return child;
}

const tail = (path: string) => readFileSync(path, 'utf8').split('\n').slice(-40).join('\n');

const holder = async (ns: string) =>
  (
    await kube
      .request<{ spec?: { holderIdentity?: string } }>(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/embedctl-controller`,
      )
      .catch(() => undefined)
  )?.spec?.holderIdentity;

const send = async (url: string, from: number, n: number) => {
  for (let i = 0; i < n; i += 10) {
    await sqsClient(env).send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: Array.from({ length: Math.min(10, n - i) }, (_, k) => ({
          Id: String(k),
          MessageBody: message(from + i + k),
        })),
      }),
    );
  }
};

describe('leader election', () => {
  it('one leader; on SIGKILL the standby takes over within the lease duration; nothing is processed twice', async () => {
    const ns = await createNamespace(kube, 'ctl-leader');
    const q = await createQueues(env, 'leader');
    const config = testConfig(ns, q, env, {
      leader: {
        enabled: true,
        leaseDurationSeconds: LEASE_SECONDS,
        renewDeadlineSeconds: 3,
        retryPeriodSeconds: 0.5,
      },
      dispatch: { batchSize: 5, batchWindowSeconds: 0.3, maxActivePods: 100 },
    });
    // Ports from the OS, not random ones: a random port in the ephemeral range can be taken (the leader then
    // dies with EADDRINUSE, as it did once in CI).
    const ports = { a: await freePort(), b: await freePort() };
    const children = {
      a: spawnController('ctl-a', config, ports.a),
      b: spawnController('ctl-b', config, ports.b),
    };
    const leader = (await waitFor(() => holder(ns), 60_000, 'a leader')) as 'ctl-a' | 'ctl-b';
    const [lead, standby] = leader === 'ctl-a' ? (['a', 'b'] as const) : (['b', 'a'] as const);

    // Probes and metrics of real processes: both ready (caches synced), only the leader says it leads.
    const get = (port: number, path: string) => fetch(`http://127.0.0.1:${port}${path}`);
    await waitFor(async () => (await get(ports[standby], '/readyz')).status === 200, 30_000, 'standby ready');
    // The leader may win the Lease before its HTTP server listens: wait for it like for the standby.
    await waitFor(async () => (await get(ports[lead], '/healthz')).status === 200, 30_000, 'leader healthy');
    expect(await (await get(ports[lead], '/metrics')).text()).toMatch(
      /leader_election_master_status\{name="embedctl-controller"\} 1/,
    );
    expect(await (await get(ports[standby], '/metrics')).text()).not.toMatch(
      /leader_election_master_status\{[^}]*\} 1/,
    );

    await send(q.url, 1000, 30);
    await waitFor(
      async () => (await listEjs(kube, ns)).filter((e) => e.status?.phase === 'Scheduled').length === 30,
      60_000,
      '30 Scheduled',
    );

    children[lead].kill('SIGKILL');
    const killedAt = Date.now();
    await send(q.url, 2000, 30);
    await waitFor(async () => (await holder(ns)) === `ctl-${standby}`, 30_000, 'handover');
    const handoverS = (Date.now() - killedAt) / 1000;
    expect(handoverS).toBeLessThanOrEqual(LEASE_SECONDS + 2);

    await waitFor(
      async () => (await listEjs(kube, ns)).filter((e) => e.status?.phase === 'Scheduled').length === 60,
      60_000,
      '60 Scheduled',
    );
    await waitFor(async () => (await queueDepth(env, q.url)) === 0, 30_000, 'queue empty');
    const ejs = await listEjs(kube, ns);
    expect(ejs).toHaveLength(60);
    expect(ejs.every((e) => e.status?.attempts === 1)).toBe(true);
    const membership = (await listJobs(kube, ns)).flatMap((j) => parseMembers(j).map((m) => m.name));
    expect(membership.sort()).toEqual(ejs.map((e) => e.metadata.name).sort()); // each in exactly one Job

    // Graceful stop releases the Lease at once.
    const exited = new Promise((r) => children[standby].once('exit', r));
    children[standby].kill('SIGTERM');
    await exited;
    expect(await holder(ns)).toBe('');
  });
});

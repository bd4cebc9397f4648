/**
 * The deployed system on a real node (test/harness/node: kubelet, containerd, KEDA, the `node` charts), a burst of
 * 200 EMBED messages, and local mode on the same receipts in the same run for the ratio.
 *
 * Figures (times from the moment the burst's first message was sent):
 * - cluster.msg_to_pod_running_p50_s/_p99_s: until the worker container that took the receipt started (the pod's
 *   `startedAt`; worker pods carry their EmbeddingJobs in an annotation).
 * - cluster.msg_to_completed_p50_s/_p99_s: until the EmbeddingJob's `Compacted` condition turned True (both
 *   collections merged and published).
 * - cluster.ingest_s: until every EmbeddingJob existed (bounded by moto's SQS receive rate: see sqs.raw_drain_per_s).
 * - cluster.keda_scale_up_s: until the compactor Deployment asked for 1 replica.
 * - cluster.receipts_per_s, cluster.wall_s: the burst over the whole run, to the last Compacted.
 * - cluster.peak_rss_mb_{controller,worker,compactor}: the highest `total_rss` of any pod of that component in its
 *   memory cgroup (cgroup v1, sampled every 500 ms).
 * - cluster.vs_local_ratio: cluster.wall_s / local mode's wall time for the same receipts, workers and batch size.
 *
 * Needs root and the node's tools (`.ci/run`, or the build scripts named by the harness). Standalone:
 * `npx tsx bench/cluster.ts [receipts]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { parseMembers } from '../controller/worker-job.js';
import { makeKubeClient } from '../core/kube/client.js';
import { Informer } from '../core/kube/informer.js';
import type { KubeObject } from '../core/kube/types.js';
import { createLogger } from '../core/log.js';
import { generateReceipts } from '../core/sample/index.js';
import { announce } from '../test/harness/node/announce.js';
import {
  kubectlFor,
  startNodeCluster,
  type Kubectl,
  type NodeClusterEnv,
} from '../test/harness/node/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { cpuSnapshot, cpuSpent, ownCpuS, type Classify } from './cpu.js';
import { BENCH_SEED, benchLocalRun } from './local.js';
import { percentile } from './stats.js';

export type Figures = Record<string, { value: number; unit: string }>;

interface Deployment extends KubeObject {
  spec: { replicas?: number };
}
interface Pod extends KubeObject {
  metadata: {
    uid: string;
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  status: {
    qosClass?: string;
    containerStatuses?: {
      state?: { running?: { startedAt?: string }; terminated?: { startedAt?: string } };
    }[];
  };
}
interface EmbeddingJob extends KubeObject {
  metadata: { name: string; creationTimestamp: string };
  status?: { phase?: string; conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
}

export async function benchCluster(receipts = 200): Promise<Figures> {
  const cluster = await startNodeCluster({ log: (m) => console.error(`[node] ${m}`) });
  let figures: Figures;
  try {
    figures = await burst(
      cluster.env,
      kubectlFor(cluster.env.binDir, cluster.env.kubeconfigPath, 60_000),
      receipts,
    );
  } finally {
    await cluster.stop();
  }
  // Local mode on the same receipts with the node's worker settings (2 at a time, 20 per batch).
  const cpu0 = ownCpuS();
  const localWallS = (await benchLocalRun(receipts, 20)).wallMs / 1000;
  figures['cluster.local_wall_s'] = { value: localWallS, unit: 's' };
  figures['cluster.local_cpu_s'] = { value: ownCpuS() - cpu0, unit: 's' };
  figures['cluster.vs_local_ratio'] = { value: figures['cluster.wall_s']!.value / localWallS, unit: 'ratio' };
  return figures;
}

async function burst(env: NodeClusterEnv, kubectl: Kubectl, n: number): Promise<Figures> {
  const ns = env.namespace;
  kubectl(['-n', ns, 'wait', '--for=condition=Available', '--timeout=180s', 'deploy/embedctl-controller']);

  // Watches, not polling: `kubectl get -o json` of a few hundred EmbeddingJobs every 500 ms cost the 2-core node
  // about a core (kubectl's decoding plus the apiserver's lists), which the pipeline under test then lacked.
  const kube = await makeKubeClient({ kubeconfig: env.kubeconfigPath });
  const log = createLogger('bench-cluster', 'warn');
  const stop = new AbortController();
  const watch = <T extends KubeObject>(name: string, path: string): Informer<T> => {
    const informer = new Informer<T>(kube, { name, path, log });
    void informer.start(stop.signal);
    return informer;
  };
  const pods = watch<Pod>('pods', `/api/v1/namespaces/${ns}/pods`);
  const ejs = watch<EmbeddingJob>(
    'embeddingjobs',
    `/apis/embedding.receipts.dev/v1alpha1/namespaces/${ns}/embeddingjobs`,
  );
  const deployments = watch<Deployment>('deployments', `/apis/apps/v1/namespaces/${ns}/deployments`);

  const rss = new Map<string, number>(); // component → peak bytes
  const started = new Map<string, number>(); // EmbeddingJob name → worker container start (epoch ms)
  const samplePods = (): void => {
    for (const p of pods.list()) {
      const component = p.metadata.labels?.['app.kubernetes.io/component'];
      const bytes = podRss(p);
      if (component && bytes !== undefined) rss.set(component, Math.max(rss.get(component) ?? 0, bytes));
      const state = p.status.containerStatuses?.[0]?.state;
      const at = Date.parse(state?.running?.startedAt ?? state?.terminated?.startedAt ?? '');
      if (Number.isNaN(at)) continue;
      for (const { name } of parseMembers(p)) if (!started.has(name)) started.set(name, at);
    }
  };

  try {
    await Promise.all([pods.waitForSync(), ejs.waitForSync(), deployments.waitForSync()]);
    const cpuBefore = cpuSnapshot(classify(env));
    const sentAt = await announce(env, generateReceipts(n, BENCH_SEED));
    let scaleUpMs: number | undefined;
    let ingestMs: number | undefined;
    const jobs = await waitFor(
      `all ${n} EmbeddingJobs Compacted`,
      () => {
        samplePods();
        if (scaleUpMs === undefined && (deployments.get('embedctl-compactor')?.spec.replicas ?? 0) > 0)
          scaleUpMs = Date.now() - sentAt;
        const all = ejs.list();
        if (ingestMs === undefined && all.length >= n) ingestMs = Date.now() - sentAt;
        const failed = all.filter((j) => j.status?.phase === 'Failed');
        if (failed.length)
          throw new Error(`${failed.length} EmbeddingJobs failed, e.g. ${failed[0]!.metadata.name}`);
        return all.length === n && all.every((j) => compactedAt(j) !== undefined) ? all : undefined;
      },
      20 * 60_000,
      500,
    );
    const figures = figuresOf(n, sentAt, jobs, started, rss, { scaleUpMs, ingestMs });
    const cpu = cpuSpent(cpuBefore, cpuSnapshot(classify(env)));
    figures['cluster.cpu_busy_share'] = { value: cpu.busyShare, unit: 'share' };
    for (const [cls, sec] of cpu.seconds) figures[`cluster.cpu_s_${cls}`] = { value: sec, unit: 's' };
    return figures;
  } finally {
    stop.abort();
    kube.close();
  }
}

function figuresOf(
  n: number,
  sentAt: number,
  jobs: EmbeddingJob[],
  started: Map<string, number>,
  rss: Map<string, number>,
  at: { scaleUpMs: number | undefined; ingestMs: number | undefined },
): Figures {
  const toPod = jobs
    .map((j) => (started.get(j.metadata.name) ?? NaN) - sentAt)
    .filter((ms) => ms >= 0)
    .sort((a, b) => a - b);
  if (toPod.length < n * 0.9) throw new Error(`saw the worker pod of only ${toPod.length} of ${n} receipts`);
  const toDone = jobs.map((j) => compactedAt(j)! - sentAt).sort((a, b) => a - b);
  const wallS = toDone[toDone.length - 1]! / 1000;
  const s = (ms: number | undefined): number => (ms ?? NaN) / 1000;
  const [pod, done] = [percentile(toPod), percentile(toDone)];
  const figures: Figures = {
    'cluster.receipts': { value: n, unit: 'receipts' },
    'cluster.msg_to_pod_running_p50_s': { value: s(pod(50)), unit: 's' },
    'cluster.msg_to_pod_running_p99_s': { value: s(pod(99)), unit: 's' },
    'cluster.msg_to_completed_p50_s': { value: s(done(50)), unit: 's' },
    'cluster.msg_to_completed_p99_s': { value: s(done(99)), unit: 's' },
    'cluster.ingest_s': { value: s(at.ingestMs), unit: 's' },
    'cluster.keda_scale_up_s': { value: s(at.scaleUpMs), unit: 's' },
    'cluster.wall_s': { value: wallS, unit: 's' },
    'cluster.receipts_per_s': { value: n / wallS, unit: 'receipts/s' },
  };
  for (const [component, key] of [
    ['controller', 'controller'],
    ['worker', 'worker'],
    ['compactor', 'compactor'],
  ] as const)
    figures[`cluster.peak_rss_mb_${key}`] = { value: (rss.get(component) ?? NaN) / 2 ** 20, unit: 'MB' };
  return figures;
}

/**
 * The burst's CPU by where it ran: the project's pods (cgroup), moto, the apiserver and etcd, the node's own daemons
 * (kubelet, containerd and its shims, scheduler, controller-manager), KEDA, and this process (the bench's watches and
 * the OpenAI-compatible endpoint the workers call).
 */
function classify(env: NodeClusterEnv): Classify {
  return (cmd, pid) => {
    if (cmd.includes('moto_server')) return 'moto';
    if (cmd.includes(env.runDir) || cmd.includes('containerd-shim')) {
      if (/kube-apiserver|\/etcd /.test(cmd)) return 'apiserver_etcd';
      if (cmd.includes('keda')) return 'keda';
      return 'node_daemons';
    }
    return pid === process.pid ? 'bench' : undefined;
  };
}

function compactedAt(j: EmbeddingJob): number | undefined {
  const c = j.status?.conditions?.find((x) => x.type === 'Compacted' && x.status === 'True');
  return c?.lastTransitionTime ? Date.parse(c.lastTransitionTime) : undefined;
}

/** `total_rss` of the pod's memory cgroup (the kubelet runs cgroupfs on cgroup v1: kubepods/<qos>/pod<uid>). */
function podRss(p: Pod): number | undefined {
  const qos = p.status.qosClass?.toLowerCase();
  const dir = qos === 'guaranteed' || !qos ? '' : `${qos}/`;
  try {
    const stat = readFileSync(
      `/sys/fs/cgroup/memory/kubepods/${dir}pod${p.metadata.uid}/memory.stat`,
      'utf8',
    );
    const m = /^total_rss (\d+)$/m.exec(stat);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // not started yet, or already gone
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = process.argv[2] ? Number(process.argv[2]) : undefined;
  const figures = await benchCluster(n);
  for (const [k, v] of Object.entries(figures))
    console.log(`${k.padEnd(36)} ${v.value.toFixed(3).padStart(10)} ${v.unit}`);
}

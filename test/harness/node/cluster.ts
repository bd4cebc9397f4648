import { accessSync, chownSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { synthToDir } from '../../../cdk8s/app.js';
import type { EnvironmentConfig } from '../../../cdk8s/config.js';
import { loadEnvironment, NODE_BRIDGE_IP, NODE_PORTS } from '../../../cdk8s/config.js';
import { OPENAI_SECRET } from '../../../core/config/env.js';
import { startApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { startControllerManager } from '../controller-manager.js';
import { startEmbeddings } from '../embeddings.js';
import { startEtcd } from '../etcd.js';
import { startMoto } from '../moto.js';
import { PortAllocator } from '../ports.js';
import { ProcessRegistry, reapStaleRuns } from '../processes.js';
import {
  defaultBinDir,
  defaultImageDir,
  defaultKedaDir,
  defaultKsmDir,
  defaultMotoVenv,
  PROMETHEUS_BIN,
} from '../versions.js';
import { IMAGE_PROGRAMS } from '../../../tools/image/programs.js';
import { createAwsResources } from './aws-resources.js';
import { createBridge } from './bridge.js';
import { waitEstablished } from './crds.js';
import { startContainerd } from './containerd.js';
import { captureHostState, diffHostState, restoreHostState, sh, unmountUnder } from './host.js';
import { startKeda } from './keda.js';
import { startKubelet } from './kubelet.js';
import { startKubeStateMetrics } from './kube-state-metrics.js';
import { startPrometheus } from './prometheus.js';
import { startScheduler } from './scheduler.js';

/** The pod bridge; its address is the node IP and where moto, the embedder and the apiserver listen. */
export const BRIDGE_NAME = 'embnode0';
export const NODE_NAME = 'localhost';
export const PAUSE_IMAGE = 'localhost/pause:local';
const RUN_PREFIX = 'receipt-node-';
export const AWS_TEST_KEYS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** kubectl (the 1.35.4 build) with `args`, stdin `input`; returns stdout, throws with stderr. */
export type Kubectl = (args: string[], input?: string) => string;

export function kubectlFor(binDir: string, kubeconfigPath: string, timeoutMs = 120_000): Kubectl {
  return (args, input) =>
    sh(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfigPath}`, ...args], { input, timeoutMs });
}

/** Plain data for tests (vitest `provide`) and for `npm run cluster -- status`. */
export interface NodeClusterEnv {
  kubeconfigPath: string;
  server: string;
  token: string;
  /** base64 PEM, as `certificate-authority-data`. */
  caData: string;
  namespace: string;
  nodeName: string;
  bridgeIp: string;
  aws: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  embeddingsBaseUrl: string;
  /**
   * Prometheus (Debian's) scraping what the synthesized ServiceMonitor selects plus kube-state-metrics, evaluating
   * the synthesized PrometheusRule: its HTTP API, on loopback.
   */
  prometheusUrl: string;
  /** The synthesized `node` environment (resolved, as deployed). */
  config: EnvironmentConfig;
  chartsDir: string;
  /** Host directory behind the hostPath PersistentVolume (the stand-in for EFS), owned by 10001. */
  chromaHostPath: string;
  /** File holding the current kubelet PID (the harness restarts a kubelet that dies, as systemd would). */
  kubeletPidFile: string;
  binDir: string;
  runDir: string;
}

export interface NodeCluster {
  env: NodeClusterEnv;
  timings: Record<string, number>;
  /** Tears everything down and throws if a process, mount, link, path, cgroup or sysctl is left changed. */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  binDir?: string;
  kedaDir?: string;
  ksmDir?: string;
  motoVenv?: string;
  imageDir?: string;
  /** Deploy the synthesized `node` charts (default true). */
  deploy?: boolean;
  /** Parent of the run directory. Default /tmp (the kubelet and containerd roots live in it). */
  tmpParent?: string;
  keepRunDir?: boolean;
  log?: (m: string) => void;
}

function requireTools(paths: Record<string, string>): void {
  const missing: string[] = [];
  for (const [what, path] of Object.entries(paths)) {
    try {
      accessSync(path, constants.R_OK);
    } catch {
      missing.push(`${what} (${path})`);
    }
  }
  for (const cmd of ['containerd', 'ctr', 'runc', 'ip', 'openssl', 'umount']) {
    try {
      sh('sh', ['-c', `command -v ${cmd}`]);
    } catch {
      missing.push(`${cmd} (apt: containerd runc containernetworking-plugins)`);
    }
  }
  if (missing.length) {
    throw new Error(
      `real node: missing ${missing.join(', ')}. Run .ci/run once, or tools/testenv/build-go.sh, ` +
        'tools/testenv/build-keda.sh, tools/testenv/build-kube-state-metrics.sh and SAVE_DIR=~/.cache/receipt-embeddings-image/node tools/image/build.sh',
    );
  }
  if (process.getuid?.() !== 0) throw new Error('real node: must run as root (mounts, cgroups, a bridge)');
}

/**
 * One real Kubernetes node on this machine, in the order the reference found to work: host state recorded →
 * bridge → etcd → kube-apiserver (on the bridge address, Node+RBAC) → controller-manager → scheduler → containerd
 * (+ image import) → kubelet → KEDA → moto and the embedder on the bridge address → kube-state-metrics and
 * Prometheus (so it sees every pod from the first) → AWS resources → the `node` charts applied with kubectl, as a
 * user would. Teardown goes back the same way and checks the host.
 */
export async function startNodeCluster(opts: StartNodeOptions = {}): Promise<NodeCluster> {
  const log = opts.log ?? ((m: string) => console.log(`[node] ${m}`));
  const binDir = opts.binDir ?? defaultBinDir();
  const kedaDir = opts.kedaDir ?? defaultKedaDir();
  const ksmDir = opts.ksmDir ?? defaultKsmDir();
  const motoVenv = opts.motoVenv ?? defaultMotoVenv();
  const imageDir = opts.imageDir ?? join(defaultImageDir(), 'node');
  // One image per program (docs/adr/0016) and the pod sandbox's.
  const images = {
    ...Object.fromEntries(IMAGE_PROGRAMS.map((p) => [`${p} image`, join(imageDir, `${p}.tar`)])),
    'pause image': join(imageDir, 'pause.tar'),
  };
  requireTools({
    kubelet: join(binDir, 'kubelet'),
    'kube-scheduler': join(binDir, 'kube-scheduler'),
    'keda-operator': join(kedaDir, 'bin', 'keda-operator'),
    'kube-state-metrics': join(ksmDir, 'bin', 'kube-state-metrics'),
    'prometheus (apt: prometheus)': PROMETHEUS_BIN,
    'moto venv': join(motoVenv, 'bin', 'moto_server'),
    ...images,
  });
  const tmpParent = opts.tmpParent ?? '/tmp';
  const reaped = reapStaleRuns(tmpParent, RUN_PREFIX);
  if (reaped.length) log(`killed leftovers of an earlier run: ${reaped.join(', ')}`);

  const hostBefore = captureHostState();
  const runDir = mkdtempSync(join(tmpParent, RUN_PREFIX));
  const keep = opts.keepRunDir ?? process.env.TESTENV_KEEP === '1';
  // The registry must not delete the run dir on an emergency exit: mounts may still be under it.
  const registry = new ProcessRegistry(runDir, false, false);
  const ports = new PortAllocator();
  const ctx: ComponentContext = { registry, runDir, binDir, port: () => ports.next() };
  const started: Component[] = [];
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  async function step<T>(name: string, run: () => Promise<T> | T): Promise<T> {
    const t = performance.now();
    const out = await run();
    timings[name] = Math.round(performance.now() - t);
    log(`${name} in ${timings[name]} ms`);
    if (out && typeof out === 'object' && 'stop' in out && 'name' in out) started.push(out as Component);
    return out;
  }

  let containerdRef: { removeAllContainers(): void } | undefined;
  let bridge: { remove(): void } | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const t = performance.now();
      const errors: unknown[] = [];
      const attempt = async (what: string, f: () => unknown): Promise<void> => {
        try {
          await f();
        } catch (err) {
          errors.push(new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`));
        }
      };
      // Components stop newest first; containers go before the kubelet and containerd that run them.
      for (const c of [...started].reverse()) {
        if (c.name === 'kubelet' && containerdRef) {
          await attempt('stop kubelet', () => c.stop());
          await attempt('remove containers', () => containerdRef?.removeAllContainers());
          continue;
        }
        await attempt(`stop ${c.name}`, () => c.stop());
      }
      await attempt('stop processes', () => registry.stopAll());
      await attempt('unmount', () => unmountUnder([runDir, '/run/netns', '/run/containerd']));
      bridge?.remove();
      await attempt('restore host', () => restoreHostState(hostBefore, BRIDGE_NAME));
      if (!keep) rmSync(runDir, { recursive: true, force: true });
      const diff = diffHostState(hostBefore, captureHostState());
      if (diff.length) errors.push(new Error(`the real node left the host changed:\n  ${diff.join('\n  ')}`));
      const bound = await ports.stillBound();
      if (bound.length) errors.push(new Error(`ports still bound after teardown: ${bound.join(', ')}`));
      log(`stopped in ${Math.round(performance.now() - t)} ms${keep ? `; kept ${runDir}` : ''}`);
      if (errors.length === 1) throw errors[0];
      if (errors.length) throw new AggregateError(errors, 'real node teardown failed');
    })());

  try {
    bridge = createBridge(BRIDGE_NAME, NODE_BRIDGE_IP);
    const subnet = `${NODE_BRIDGE_IP.split('.').slice(0, 3).join('.')}.0/24`;
    // It starts beside the image import (hundreds of MB into containerd): 30 s was not enough at load 26.
    const etcdP = step('etcd', () => startEtcd(ctx, 120_000));
    const containerdP = step('containerd', () =>
      startContainerd(ctx, { bridge: BRIDGE_NAME, subnet, pauseImage: PAUSE_IMAGE }),
    );
    // Asynchronous, all at once: the other components start while containerd unpacks the images.
    const importP = containerdP.then((c) =>
      step('image import', async () => {
        await Promise.all(Object.values(images).map((tar) => c.importImage(tar)));
      }),
    );
    // Generous: on the shared 2-core machine moto's Python start-up alone took over 60 s at load 30.
    const motoP = step('moto', () =>
      startMoto(ctx, motoVenv, { host: NODE_BRIDGE_IP, port: NODE_PORTS.aws, timeoutMs: 180_000 }),
    );
    const embeddingsP = step('embeddings', () =>
      startEmbeddings({ host: NODE_BRIDGE_IP, port: NODE_PORTS.embeddings, dimensions: 1536 }),
    );
    // These run while others are awaited: one failing early must reach the catch below (teardown, host restored),
    // not end the process as an unhandled rejection that leaves the bridge behind.
    for (const p of [etcdP, containerdP, importP, motoP, embeddingsP]) p.catch(() => undefined);
    const etcd = await etcdP;
    const api = await step('kube-apiserver', () =>
      startApiServer(ctx, {
        etcdUrl: etcd.url,
        host: NODE_BRIDGE_IP,
        port: NODE_PORTS.apiserver,
        nodeName: NODE_NAME,
      }),
    );
    const kubectl = kubectlFor(binDir, api.kubeconfigPath);
    await step('kube-controller-manager', () => startControllerManager(ctx, api));
    await step('kube-scheduler', () => startScheduler(ctx, api));
    const containerd = await containerdP;
    containerdRef = containerd;
    const kubeletP = step('kubelet', () =>
      startKubelet(ctx, {
        api,
        containerdSocket: containerd.socket,
        nodeIp: NODE_BRIDGE_IP,
        nodeName: NODE_NAME,
      }),
    );
    const kedaP = step('keda-operator', () => startKeda(ctx, { api, kedaDir, kubectl }));
    const [kubelet, , moto, embeddings] = await Promise.all([kubeletP, kedaP, motoP, embeddingsP, importP]);
    const kubeletPidFile = join(runDir, 'kubelet.pid');
    kubelet.onRestart = (pid) => writeFileSync(kubeletPidFile, String(pid));
    writeFileSync(kubeletPidFile, String(kubelet.pid));

    const chromaHostPath = join(runDir, 'chroma');
    mkdirSync(chromaHostPath);
    chownSync(chromaHostPath, 10001, 10001); // hostPath ignores fsGroup
    const config = loadEnvironment('node', { storage: { mode: 'hostPath', path: chromaHostPath } });
    const chartsDir = join(runDir, 'charts');
    const ksm = await step('kube-state-metrics', () =>
      startKubeStateMetrics(ctx, { api, ksmDir, namespace: config.namespace }),
    );
    const prometheus = await step('prometheus', () =>
      startPrometheus(ctx, { api, cfg: config, kubeStateMetrics: ksm.target }),
    );
    const aws = { endpoint: moto.endpoint, region: config.aws.region, ...AWS_TEST_KEYS };
    const env: NodeClusterEnv = {
      kubeconfigPath: api.kubeconfigPath,
      server: api.server,
      token: api.token,
      caData: Buffer.from(api.caPem).toString('base64'),
      namespace: config.namespace,
      nodeName: NODE_NAME,
      bridgeIp: NODE_BRIDGE_IP,
      aws,
      embeddingsBaseUrl: embeddings.baseUrl,
      prometheusUrl: prometheus.url,
      config,
      chartsDir,
      chromaHostPath,
      kubeletPidFile,
      binDir,
      runDir,
    };
    if (opts.deploy ?? true) {
      await step('aws resources', () =>
        createAwsResources(
          { region: aws.region, endpoint: aws.endpoint, credentials: AWS_TEST_KEYS },
          config,
        ),
      );
      await step('deploy', () => deployCharts(env, kubectl));
    }
    timings.total = Math.round(performance.now() - t0);
    log(`node ready in ${timings.total} ms (run dir ${runDir})`);
    return { env, timings, stop };
  } catch (err) {
    log(`start-up failed: ${err instanceof Error ? err.message : String(err)}`);
    await stop().catch((e: unknown) =>
      log(`teardown after failed start: ${e instanceof Error ? e.message : String(e)}`),
    );
    throw err;
  }
}

/**
 * What a user does with the synthesized charts: namespace, the two Secrets the `node` environment references
 * (static AWS keys where EKS uses IRSA; the embedder's API key), CRDs first, then everything, then waits for the
 * controller to roll out.
 */
export function deployCharts(env: NodeClusterEnv, kubectl: Kubectl): void {
  const files = synthToDir(env.config, env.chartsDir);
  const ns = env.namespace;
  const file = (prefix: string): string =>
    join(env.chartsDir, files.find((f) => f.includes(prefix)) ?? prefix);
  kubectl(['apply', '-f', file('namespace')]);
  const secret = (name: string, data: Record<string, string>): void =>
    void kubectl([
      '-n',
      ns,
      'create',
      'secret',
      'generic',
      name,
      ...Object.entries(data).map(([k, v]) => `--from-literal=${k}=${v}`),
    ]);
  secret(env.config.aws.staticCredentialsSecret ?? 'aws-static', {
    AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
  });
  secret(OPENAI_SECRET.name, { [OPENAI_SECRET.key]: 'test' });
  kubectl(['apply', '--server-side', '-f', file('crds')]);
  waitEstablished(kubectl, ['embeddingjobs.embedding.receipts.dev']);
  kubectl(['apply', '-f', env.chartsDir]);
  kubectl(['-n', ns, 'rollout', 'status', 'deploy/embedctl-controller', '--timeout=180s']);
}

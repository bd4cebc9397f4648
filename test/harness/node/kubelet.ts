import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { stringify } from 'yaml';

import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpGet } from '../http.js';
import { writeKubeconfig } from '../kubeconfig.js';
import { waitUntilReady } from '../processes.js';

export interface Kubelet extends Component {
  nodeName: string;
  rootDir: string;
  /** The current kubelet process. */
  readonly pid: number;
  /** Called with the new PID after the supervisor restarted a kubelet that died. */
  onRestart?: (pid: number) => void;
}

export interface KubeletOptions {
  api: ApiServer;
  containerdSocket: string;
  /** The node's address on the pod bridge (the kubelet refuses a loopback node IP). */
  nodeIp: string;
  /** Must match the apiserver's `nodeName` (its token is for `system:node:<nodeName>`). */
  nodeName: string;
  timeoutMs?: number;
}

/**
 * The kubelet of the one node: on cgroup v1 with cgroupfs (`failCgroupV1: false`), listening on loopback only
 * (the node is named `localhost`, the apiserver dials it by hostname), with no iptables chains, no OOM score of its
 * own (no CAP_SYS_RESOURCE here) and its pod logs in the run directory. Ready once the Node reports Ready.
 */
export async function startKubelet(ctx: ComponentContext, opts: KubeletOptions): Promise<Kubelet> {
  const dir = join(ctx.runDir, 'kubelet');
  const rootDir = join(dir, 'root');
  const certDir = join(dir, 'certs');
  const podLogs = join(dir, 'pod-logs');
  for (const d of [rootDir, certDir, podLogs]) mkdirSync(d, { recursive: true });
  const [port, healthzPort] = [await ctx.port(), await ctx.port()];
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: '127.0.0.1',
      port,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort,
      // Reachable on loopback only; the apiserver's logs/exec calls come from this machine.
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      containerRuntimeEndpoint: `unix://${opts.containerdSocket}`,
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      failSwapOn: false,
      oomScoreAdj: 0,
      makeIPTablesUtilChains: false,
      cgroupsPerQOS: true,
      enforceNodeAllocatable: ['pods'],
      localStorageCapacityIsolation: true,
      podLogsDir: podLogs,
      resolvConf: '/etc/resolv.conf',
      serializeImagePulls: false,
      maxPods: 40,
      rotateCertificates: false,
      serverTLSBootstrap: false,
      registerNode: true,
      nodeStatusReportFrequency: '10s',
      syncFrequency: '10s',
      // Evictions would make a test's counts depend on this machine's free disk.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
    }),
  );
  const kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, { server: opts.api.server, token: opts.api.nodeToken, caPem: opts.api.caPem });
  const args = [
    `--config=${config}`,
    `--kubeconfig=${kubeconfig}`,
    `--root-dir=${rootDir}`,
    `--cert-dir=${certDir}`,
    `--hostname-override=${opts.nodeName}`,
    `--node-ip=${opts.nodeIp}`,
    // cAdvisor looks for containerd at the default socket otherwise (deprecated flag, still honoured).
    `--containerd=${opts.containerdSocket}`,
  ];
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let proc = ctx.registry.spawn({ name: 'kubelet', command: join(ctx.binDir, 'kubelet'), args });
  const nodeReady = async (): Promise<boolean> => {
    const res = await httpGet(`${opts.api.server}/api/v1/nodes/${opts.nodeName}`, {
      ca: opts.api.caPem,
      token: opts.api.token,
    });
    if (res.status !== 200) return false;
    const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } };
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  };
  const healthy = async (): Promise<boolean> =>
    (await httpGet(`http://127.0.0.1:${healthzPort}/healthz`)).status === 200 && (await nodeReady());
  await waitUntilReady(proc, healthy, timeoutMs, 250);
  // Supervised like systemd's Restart=always on a real node: a kubelet that dies (a test kills it) comes back,
  // and finds its pods still running in containerd.
  let stopped = false;
  const kubelet: Kubelet = {
    name: 'kubelet',
    nodeName: opts.nodeName,
    rootDir,
    get pid() {
      return proc.pid;
    },
    stop: async () => {
      stopped = true;
      await proc.stop();
    },
  };
  const supervise = (): void => {
    void proc.exited.then(() => {
      if (stopped) return;
      setTimeout(() => {
        if (stopped) return;
        proc = ctx.registry.spawn({ name: 'kubelet', command: join(ctx.binDir, 'kubelet'), args });
        kubelet.onRestart?.(proc.pid);
        supervise();
      }, 1_000);
    });
  };
  supervise();
  return kubelet;
}

import { join } from 'node:path';

import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpOk } from '../http.js';
import { waitUntilReady } from '../processes.js';

export interface KubeStateMetrics extends Component {
  /** `127.0.0.1:<port>`, the scrape target of its /metrics. */
  target: string;
}

/**
 * kube-state-metrics (built from its Go module), out of cluster with the admin kubeconfig: the `kube_*` series of
 * Deployments and Pods in `namespace` that the dashboard and alerts read, as kube-prometheus-stack would scrape
 * them. Both listeners on loopback.
 */
export async function startKubeStateMetrics(
  ctx: ComponentContext,
  opts: { api: ApiServer; ksmDir: string; namespace: string; timeoutMs?: number },
): Promise<KubeStateMetrics> {
  const [port, telemetry] = [await ctx.port(), await ctx.port()];
  const proc = ctx.registry.spawn({
    name: 'kube-state-metrics',
    command: join(opts.ksmDir, 'bin', 'kube-state-metrics'),
    args: [
      `--kubeconfig=${opts.api.kubeconfigPath}`,
      '--host=127.0.0.1',
      `--port=${port}`,
      '--telemetry-host=127.0.0.1',
      `--telemetry-port=${telemetry}`,
      '--resources=deployments,pods',
      `--namespaces=${opts.namespace}`,
    ],
  });
  await waitUntilReady(proc, httpOk(`http://127.0.0.1:${port}/healthz`), opts.timeoutMs ?? 60_000, 250);
  return { name: 'kube-state-metrics', target: `127.0.0.1:${port}`, stop: () => proc.stop() };
}

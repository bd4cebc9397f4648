import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { stringify } from 'yaml';

import type { EnvironmentConfig } from '../../../cdk8s/config.js';
import { monitoringObjects, scrapeJobs, writeRuleFile } from '../../support/prometheus-operator.js';
import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpOk } from '../http.js';
import { waitUntilReady } from '../processes.js';
import { PROMETHEUS_BIN } from '../versions.js';
import { startEndpointsSd } from './endpoints-sd.js';

export interface Prometheus extends Component {
  /** `http://127.0.0.1:<port>`: the HTTP API (`/api/v1/query_range`, `/api/v1/alerts`). */
  url: string;
}

/**
 * `cfg` with the Prometheus Operator objects on: the node's charts leave them out (no operator, no CRDs there), so
 * the harness synthesizes them for its own Prometheus instead.
 */
export function withOperatorObjects(cfg: EnvironmentConfig): EnvironmentConfig {
  const m = cfg.monitoring;
  return { ...cfg, monitoring: { ...m, serviceMonitor: true, alerts: { ...m.alerts, enabled: true } } };
}

/**
 * Debian's Prometheus doing what the operator would make it do: scrape what the synthesized ServiceMonitor selects
 * (the pods' IPs on the bridge, found on the node's apiserver: through endpoints-sd.ts, since Debian's build has no
 * `kubernetes_sd_configs`), plus kube-state-metrics, and evaluate the synthesized PrometheusRule. Rules are evaluated
 * as often as targets are scraped (`monitoring.scrapeInterval`). Listens on loopback; its TSDB is removed when it
 * stops.
 */
export async function startPrometheus(
  ctx: ComponentContext,
  opts: { api: ApiServer; cfg: EnvironmentConfig; kubeStateMetrics: string; timeoutMs?: number },
): Promise<Prometheus> {
  const dir = join(ctx.runDir, 'prometheus');
  const data = join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  const objects = monitoringObjects(withOperatorObjects(opts.cfg), join(dir, 'charts'));
  if (!objects.serviceMonitors.length || !objects.prometheusRules.length)
    throw new Error('prometheus: the synthesized charts hold no ServiceMonitor or no PrometheusRule');
  const sd = await startEndpointsSd(ctx, opts.api);
  const interval = opts.cfg.monitoring.scrapeInterval;
  const discovery = (namespaces: readonly string[]) => ({
    http_sd_configs: [{ url: sd.url(namespaces), refresh_interval: interval }],
  });
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [writeRuleFile(objects.prometheusRules, join(dir, 'rules.yaml'))],
    scrape_configs: [
      ...objects.serviceMonitors.flatMap((sm) => scrapeJobs(sm, discovery)),
      // As kube-prometheus-stack scrapes it: the series' own namespace/pod labels win.
      {
        job_name: 'kube-state-metrics',
        honor_labels: true,
        static_configs: [{ targets: [opts.kubeStateMetrics] }],
      },
    ],
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringify(config));
  const port = await ctx.port();
  const proc = ctx.registry.spawn({
    name: 'prometheus',
    command: PROMETHEUS_BIN,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=info',
    ],
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await proc.stop();
    await sd.stop();
    rmSync(data, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(proc, httpOk(`${url}/-/ready`), opts.timeoutMs ?? 60_000, 250);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: 'prometheus', url, stop };
}

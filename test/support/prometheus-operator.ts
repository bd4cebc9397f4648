/**
 * What the Prometheus Operator does with this project's objects, for tests without the operator: the ServiceMonitor
 * and PrometheusRule are read back from the synthesized YAML (what `kubectl apply` would ship, not the builders), the
 * PrometheusRule becomes a rule file and the ServiceMonitor a scrape job with the operator's relabelling (so series carry the same `namespace`, `pod`, `container`, `service`, `job` labels as in a cluster).
 * Used by the promtool unit test (test/unit/cdk8s/alerts.test.ts) and the real node's Prometheus
 * (test/harness/node/prometheus.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseAllDocuments, stringify } from 'yaml';

import { synthToDir } from '../../cdk8s/app.js';
import type { EnvironmentConfig } from '../../cdk8s/config.js';
import type { PrometheusRuleSpec, ServiceMonitorSpec } from '../../cdk8s/crd-types.js';

interface Metadata {
  name: string;
  namespace?: string;
}
export interface MonitoringObjects {
  serviceMonitors: { metadata: Metadata; spec: ServiceMonitorSpec }[];
  prometheusRules: { metadata: Metadata; spec: PrometheusRuleSpec }[];
}

/** Synthesizes `cfg` into `chartDir` and returns its Prometheus Operator objects. */
export function monitoringObjects(cfg: EnvironmentConfig, chartDir: string): MonitoringObjects {
  const objects = synthToDir(cfg, chartDir).flatMap((f) =>
    parseAllDocuments(readFileSync(join(chartDir, f), 'utf8')).map(
      (d) => d.toJSON() as { kind?: string; metadata: Metadata; spec: unknown },
    ),
  );
  const ofKind = <S>(kind: string) =>
    objects.filter((o) => o.kind === kind) as { metadata: Metadata; spec: S }[];
  return {
    serviceMonitors: ofKind<ServiceMonitorSpec>('ServiceMonitor'),
    prometheusRules: ofKind<PrometheusRuleSpec>('PrometheusRule'),
  };
}

/** The rule file Prometheus loads for these PrometheusRules: their `spec.groups`, as they are. */
export function writeRuleFile(rules: MonitoringObjects['prometheusRules'], file: string): string {
  writeFileSync(file, stringify({ groups: rules.flatMap((r) => r.spec.groups) }));
  return file;
}

/** Label names as Prometheus's Kubernetes discovery writes them (`app.kubernetes.io/name` → `app_kubernetes_io_name`). */
export const sdName = (label: string): string => label.replace(/[^a-zA-Z0-9_]/g, '_');
const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The scrape jobs the operator generates for one ServiceMonitor, one per endpoint: keep the Services matching the
 * selector and the named port, drop finished pods, then the target labels. `discovery` is where the targets come
 * from, with the meta labels of `kubernetes_sd_configs` role `endpoints`: the operator writes
 * `{ kubernetes_sd_configs: [{ role: 'endpoints', namespaces: { names: namespaces } }] }`; Debian's Prometheus is
 * built without Kubernetes discovery, so the real node serves the same labels over HTTP SD instead
 * (test/harness/node/endpoints-sd.ts).
 */
export function scrapeJobs(
  sm: MonitoringObjects['serviceMonitors'][number],
  discovery: (namespaces: readonly string[]) => Record<string, unknown>,
): Record<string, unknown>[] {
  const ns = sm.metadata.namespace ?? 'default';
  const namespaces = sm.spec.namespaceSelector?.matchNames ?? [ns];
  return sm.spec.endpoints.map((ep, i) => ({
    job_name: `serviceMonitor/${ns}/${sm.metadata.name}/${i}`,
    ...(ep.interval ? { scrape_interval: ep.interval, scrape_timeout: ep.interval } : {}),
    metrics_path: ep.path ?? '/metrics',
    ...discovery(namespaces),
    relabel_configs: [
      ...Object.entries(sm.spec.selector.matchLabels).map(([k, v]) => ({
        action: 'keep',
        source_labels: [
          `__meta_kubernetes_service_label_${sdName(k)}`,
          `__meta_kubernetes_service_labelpresent_${sdName(k)}`,
        ],
        regex: `(${escapeRegex(v)});true`,
      })),
      {
        action: 'keep',
        source_labels: ['__meta_kubernetes_endpoint_port_name'],
        regex: escapeRegex(ep.port),
      },
      { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job' },
      { target_label: 'endpoint', replacement: ep.port },
    ],
  }));
}

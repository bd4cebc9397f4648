/**
 * The synthesized ServiceMonitor of `prod`, turned into Prometheus scrape jobs the way the Prometheus Operator does
 * (test/support/prometheus-operator.ts, which the real node's Prometheus uses): `promtool check config` accepts the
 * result, and its keep rules select exactly the two metrics Services of the same synth by their labels and port.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';

import { loadEnvironment } from '../../../cdk8s/config.js';
import { monitoringObjects, scrapeJobs } from '../../support/prometheus-operator.js';

const cfg = loadEnvironment('prod');
const workDir = mkdtempSync(join(tmpdir(), 'service-monitor-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
const chartDir = join(workDir, 'charts');
const { serviceMonitors } = monitoringObjects(cfg, chartDir);
// What the real node's Prometheus discovers with (Debian's has no kubernetes_sd_configs, so the promtool here
// would refuse that block).
const discovery = (namespaces: readonly string[]) => ({
  http_sd_configs: [{ url: `http://127.0.0.1:1/targets?namespace=${namespaces.join(',')}` }],
});

interface Relabel {
  action?: string;
  source_labels?: string[];
  regex?: string;
}
interface Service {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: { ports: { name?: string }[] };
}

/** The discovery labels Prometheus gives one endpoint of `svc` on port `port` (only those the keep rules read). */
function sdLabels(svc: Service, port: string): Record<string, string> {
  const out: Record<string, string> = { __meta_kubernetes_endpoint_port_name: port };
  for (const [k, v] of Object.entries(svc.metadata.labels ?? {})) {
    const n = k.replace(/[^a-zA-Z0-9_]/g, '_');
    out[`__meta_kubernetes_service_label_${n}`] = v;
    out[`__meta_kubernetes_service_labelpresent_${n}`] = 'true';
  }
  return out;
}
const kept = (rules: Relabel[], labels: Record<string, string>): boolean =>
  rules
    .filter((r) => r.action === 'keep')
    .every((r) =>
      new RegExp(`^(?:${r.regex})$`).test((r.source_labels ?? []).map((l) => labels[l] ?? '').join(';')),
    );

describe('the ServiceMonitor as Prometheus scrape jobs (what the Prometheus Operator generates)', () => {
  const jobs = serviceMonitors.flatMap((sm) => scrapeJobs(sm, discovery));

  it('promtool check config accepts them', () => {
    const file = join(workDir, 'prometheus.yml');
    writeFileSync(file, stringify({ scrape_configs: jobs }));
    const r = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8' });
    expect(r.error, 'promtool on PATH (Debian package "prometheus")').toBeUndefined();
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('select the controller and compactor metrics Services on port "metrics", and nothing else', () => {
    expect(serviceMonitors).toHaveLength(1);
    expect(jobs).toHaveLength(1);
    const rules = (jobs[0] as { relabel_configs: Relabel[] }).relabel_configs;
    const services = readdirSync(chartDir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) =>
        parseAllDocuments(readFileSync(join(chartDir, f), 'utf8')).map((d) => d.toJSON() as Service),
      )
      .filter((o) => o.kind === 'Service');
    const selected = services.filter((svc) =>
      svc.spec.ports.some((p) => p.name && kept(rules, sdLabels(svc, p.name))),
    );
    expect(selected.map((s) => s.metadata.name).sort()).toEqual([
      'embedctl-compactor-metrics',
      'embedctl-controller-metrics',
    ]);
    // A Service of another install, and another port of ours, are not scraped.
    const ours = selected[0]!;
    const other = {
      ...ours,
      metadata: {
        ...ours.metadata,
        labels: { ...ours.metadata.labels, 'app.kubernetes.io/instance': 'other' },
      },
    };
    expect(kept(rules, sdLabels(other, 'metrics'))).toBe(false);
    expect(kept(rules, sdLabels(ours, 'http'))).toBe(false);
  });
});

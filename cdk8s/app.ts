/**
 * Builds the cdk8s App for one environment. Chart order is fixed by explicit dependencies, so the files come out
 * numbered (`0000-namespace.k8s.yaml`, …) and `kubectl apply -f charts/` creates the namespace and CRDs first.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import type { Chart } from 'cdk8s';
import { App, YamlOutputType } from 'cdk8s';

import type { EnvironmentConfig } from './config.js';
import { AdmissionChart } from './charts/admission.js';
import { ConfigChart } from './charts/config.js';
import { CrdsChart } from './charts/crds.js';
import { MonitoringChart } from './charts/monitoring.js';
import { NamespaceChart } from './charts/namespace.js';
import { NetworkChart } from './charts/network.js';
import { RbacChart } from './charts/rbac.js';
import { StorageChart } from './charts/storage.js';
import { CompactorChart, ControllerChart } from './charts/workloads.js';

export const OUTPUT_EXTENSION = '.k8s.yaml';
/** The environment whose synth is committed in charts/ (and checked for drift). */
export const DEFAULT_ENV = 'dev';
export const DEFAULT_OUT = 'charts';

export function buildApp(cfg: EnvironmentConfig, outdir = 'charts'): App {
  const app = new App({
    outdir,
    outputFileExtension: OUTPUT_EXTENSION,
    yamlOutputType: YamlOutputType.FILE_PER_CHART,
  });
  const props = { cfg };
  const charts: Chart[] = [];
  const add = <T extends Chart>(c: T): T => {
    const prev = charts.at(-1);
    if (prev) c.addDependency(prev);
    charts.push(c);
    return c;
  };
  add(new NamespaceChart(app, 'namespace', props));
  add(new CrdsChart(app, 'crds', props));
  if (cfg.storage.mode !== 'remote') add(new StorageChart(app, 'storage', props));
  const rbac = add(new RbacChart(app, 'rbac', props));
  add(new ConfigChart(app, 'config', props));
  add(new ControllerChart(app, 'controller', { ...props, serviceAccount: rbac.controllerSa }));
  add(new CompactorChart(app, 'compactor', { ...props, serviceAccount: rbac.compactorSa }));
  add(new NetworkChart(app, 'network', props));
  add(new AdmissionChart(app, 'admission', props));
  if (cfg.monitoring.serviceMonitor || cfg.monitoring.alerts.enabled)
    add(new MonitoringChart(app, 'monitoring', props));
  return app;
}

/** Synthesizes into `outdir`, first removing stale `*.k8s.yaml` files there (so a dropped chart disappears). */
export function synthToDir(cfg: EnvironmentConfig, outdir: string): string[] {
  if (existsSync(outdir)) {
    for (const f of readdirSync(outdir)) if (f.endsWith(OUTPUT_EXTENSION)) rmSync(join(outdir, f));
  } else {
    mkdirSync(outdir, { recursive: true });
  }
  buildApp(cfg, outdir).synth();
  return readdirSync(outdir)
    .filter((f) => f.endsWith(OUTPUT_EXTENSION))
    .sort();
}

import type { Construct } from 'constructs';

import { APP_NAME, LABEL } from '../../core/contracts/labels.js';
import { alertingRules } from '../alerts.js';
import { labels } from '../common.js';
import { PrometheusRule, ServiceMonitor } from '../crd-types.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

/**
 * Prometheus Operator objects, each off by default because its CRD must exist: the ServiceMonitor for the controller
 * and compactor metrics Services, and the PrometheusRule with the alerts of cdk8s/alerts.ts.
 */
export class MonitoringChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    if (cfg.monitoring.serviceMonitor) {
      new ServiceMonitor(this, 'service-monitor', {
        metadata: { name: 'embedctl', labels: { ...labels(cfg), ...cfg.monitoring.serviceMonitorLabels } },
        spec: {
          selector: { matchLabels: { [LABEL.name]: APP_NAME, [LABEL.instance]: cfg.name } },
          namespaceSelector: { matchNames: [cfg.namespace] },
          endpoints: [{ port: 'metrics', path: '/metrics', interval: cfg.monitoring.scrapeInterval }],
        },
      });
    }
    if (cfg.monitoring.alerts.enabled) {
      new PrometheusRule(this, 'alerts', {
        metadata: { name: 'embedctl', labels: { ...labels(cfg), ...cfg.monitoring.alerts.labels } },
        spec: alertingRules(cfg),
      });
    }
  }
}

import type { Construct } from 'constructs';

import { APP_NAME, LABEL } from '../../core/contracts/labels.js';
import { labels } from '../common.js';
import { ServiceMonitor } from '../crd-types.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

/** Prometheus Operator ServiceMonitor for the controller and compactor metrics Services (off by default). */
export class MonitoringChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    new ServiceMonitor(this, 'service-monitor', {
      metadata: { name: 'embedctl', labels: { ...labels(cfg), ...cfg.monitoring.serviceMonitorLabels } },
      spec: {
        selector: { matchLabels: { [LABEL.name]: APP_NAME, [LABEL.instance]: cfg.name } },
        namespaceSelector: { matchNames: [cfg.namespace] },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: cfg.monitoring.scrapeInterval }],
      },
    });
  }
}

import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { NAMES, labels } from '../common.js';
import { workerConfigData } from '../worker-config.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

/** Worker Job settings the controller reads (WORKER_CONFIGMAP). */
export class ConfigChart extends NamespacedChart {
  readonly workerConfig: kplus.ConfigMap;
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    this.workerConfig = new kplus.ConfigMap(this, 'worker-settings', {
      metadata: { name: NAMES.workerConfigMap, labels: labels(props.cfg, 'worker') },
      data: workerConfigData(props.cfg),
    });
  }
}

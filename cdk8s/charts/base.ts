import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';

import type { EnvironmentConfig } from '../config.js';
import { labels } from '../common.js';

export interface ChartProps {
  readonly cfg: EnvironmentConfig;
}

/** A chart of namespaced objects: every object lands in `cfg.namespace` and carries the common labels. */
export class NamespacedChart extends Chart {
  readonly cfg: EnvironmentConfig;
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, { namespace: props.cfg.namespace, labels: labels(props.cfg), disableResourceNameHashes: true });
    this.cfg = props.cfg;
  }
}

/** A chart of cluster-scoped objects (no namespace). */
export class ClusterChart extends Chart {
  readonly cfg: EnvironmentConfig;
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, { labels: labels(props.cfg), disableResourceNameHashes: true });
    this.cfg = props.cfg;
  }
}

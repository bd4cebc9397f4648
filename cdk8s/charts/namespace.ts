import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import type { ChartProps } from './base.js';
import { ClusterChart } from './base.js';

/** Pod Security Standards level, enforced and also audited/warned for pod templates (Deployments, Jobs). */
export const PSS_LABELS = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
  'pod-security.kubernetes.io/audit': 'restricted',
  'pod-security.kubernetes.io/audit-version': 'latest',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/warn-version': 'latest',
} as const;

export class NamespaceChart extends ClusterChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    new kplus.Namespace(this, 'namespace', {
      metadata: { name: props.cfg.namespace, labels: { ...PSS_LABELS } },
    });
  }
}

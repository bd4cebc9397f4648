import type { ApiObjectProps } from 'cdk8s';
import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';

import { embeddingJobCrd } from '../../crds/embedding-job-crd.js';
import type { ChartProps } from './base.js';
import { ClusterChart } from './base.js';

/** The project's CRDs, from their single source of truth (crds/embedding-job-crd.ts), not a copy of the YAML. */
export class CrdsChart extends ClusterChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    new ApiObject(this, 'embeddingjobs', embeddingJobCrd() as unknown as ApiObjectProps);
  }
}

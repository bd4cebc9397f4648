import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { GROUP, PLURAL } from '../../core/contracts/embedding-job.js';
import { NAMES, irsaAnnotations, labels } from '../common.js';
import type { ChartProps } from './base.js';
import type { EnvironmentConfig } from '../config.js';
import type { Program } from '../env.js';
import { NamespacedChart } from './base.js';

/** An RBAC resource reference (cdk8s-plus-27 renders one rule per resource; `resourceName` scopes it). */
const res = (apiGroup: string, resourceType: string, resourceName?: string): kplus.IApiResource => ({
  apiGroup,
  resourceType,
  ...(resourceName ? { resourceName } : {}),
});

/**
 * Service accounts (IRSA annotations; with EKS Pod Identity the annotation is left out and an association is made
 * on the AWS side) and least-privilege namespaced Roles:
 * - controller: its EmbeddingJobs (+status, finalizers), batch Jobs, pods read-only, events, its Lease, and the
 *   worker-settings ConfigMap by name. No secrets, no cluster-wide rights.
 * - compactor: get/update of its own Lease only.
 * - worker: no Role at all and no service-account token in the pod.
 * The Leases themselves are created (empty) here, so no Role needs `create` on leases.
 */
export class RbacChart extends NamespacedChart {
  readonly controllerSa: kplus.ServiceAccount;
  readonly compactorSa: kplus.ServiceAccount;
  readonly workerSa: kplus.ServiceAccount;

  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;

    this.controllerSa = new kplus.ServiceAccount(this, 'controller-sa', {
      metadata: {
        name: NAMES.controller,
        labels: labels(cfg, 'controller'),
        annotations: irsaAnnotations(cfg, cfg.iam.controllerRoleArn),
      },
      automountToken: true,
    });
    this.compactorSa = new kplus.ServiceAccount(this, 'compactor-sa', {
      metadata: {
        name: NAMES.compactor,
        labels: labels(cfg, 'compactor'),
        annotations: irsaAnnotations(cfg, cfg.iam.compactorRoleArn),
      },
      automountToken: true,
    });
    this.workerSa = new kplus.ServiceAccount(this, 'worker-sa', {
      metadata: {
        name: NAMES.worker,
        labels: labels(cfg, 'worker'),
        annotations: irsaAnnotations(cfg, cfg.iam.workerRoleArn),
      },
      automountToken: true,
    });

    for (const [key, name] of Object.entries(NAMES.leases)) {
      new kplus.k8s.KubeLease(this, `lease-${key}`, { metadata: { name, labels: labels(cfg, key) }, spec: {} });
    }
    // Created empty for the same reason: the stream processor only reads and replaces its checkpoints.
    new kplus.k8s.KubeConfigMap(this, 'stream-checkpoint', {
      metadata: { name: NAMES.streamCheckpoint, labels: labels(cfg, 'controller') },
    });

    const controller = new kplus.Role(this, 'controller-role', {
      metadata: { name: NAMES.controller, labels: labels(cfg, 'controller') },
    });
    controller.allow(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'], res(GROUP, PLURAL));
    controller.allow(['get', 'update', 'patch'], res(GROUP, `${PLURAL}/status`));
    controller.allow(['update'], res(GROUP, `${PLURAL}/finalizers`));
    controller.allow(['get', 'list', 'watch', 'create', 'delete'], res('batch', 'jobs'));
    controller.allow(['get', 'list', 'watch'], res('', 'pods'));
    controller.allow(['create', 'patch'], res('', 'events'));
    controller.allow(['create', 'patch'], res('events.k8s.io', 'events'));
    controller.allow(['get', 'update', 'patch'], res('coordination.k8s.io', 'leases', NAMES.leases.controller));
    controller.allow(['get', 'list', 'watch'], res('', 'configmaps', NAMES.workerConfigMap));
    controller.allow(['get', 'update'], res('', 'configmaps', NAMES.streamCheckpoint));
    this.bind(cfg, 'controller', controller, this.controllerSa);

    const compactor = new kplus.Role(this, 'compactor-role', {
      metadata: { name: NAMES.compactor, labels: labels(cfg, 'compactor') },
    });
    compactor.allow(['get', 'update', 'patch'], res('coordination.k8s.io', 'leases', NAMES.leases.compactor));
    this.bind(cfg, 'compactor', compactor, this.compactorSa);

    // The worker reports each item on its EmbeddingJob's status subresource (controller/README.md).
    const worker = new kplus.Role(this, 'worker-role', {
      metadata: { name: NAMES.worker, labels: labels(cfg, 'worker') },
    });
    worker.allow(['get'], res(GROUP, PLURAL));
    worker.allow(['patch'], res(GROUP, `${PLURAL}/status`));
    this.bind(cfg, 'worker', worker, this.workerSa);
  }

  private bind(cfg: EnvironmentConfig, program: Program, role: kplus.Role, sa: kplus.ServiceAccount): void {
    const binding = new kplus.RoleBinding(this, `${program}-binding`, {
      metadata: { name: NAMES[program], labels: labels(cfg, program) },
      role,
    });
    binding.addSubjects(sa);
    // The server drops `apiGroup: ""` of ServiceAccount subjects; leave it out so re-applies are no-ops.
    ApiObject.of(binding).addJsonPatch(JsonPatch.remove('/subjects/0/apiGroup'));
  }
}

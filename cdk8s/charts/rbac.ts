import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { GROUP, PLURAL } from '../../core/contracts/embedding-job.js';
import { NAMES, irsaAnnotations, labels } from '../common.js';
import type { ChartProps } from './base.js';
import type { EnvironmentConfig } from '../config.js';
import type { Program } from '../../core/config/env.js';
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
 * - controller: its EmbeddingJobs (+status), batch Jobs, pods read-only, core/v1 Events (create, and list for the
 *   FailedCreate check), its Lease, and the worker-settings ConfigMap by name. No secrets, no cluster-wide rights.
 * - compactor: get/update of its own Lease only.
 * - worker: get EmbeddingJobs and patch their status (it reports each item there), with its token mounted.
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
    // Only the verbs the controller's requests use (docs/deploy.md, "RBAC"): no update/patch of the main resource,
    // no finalizers (none are used; Jobs' ownerReferences have blockOwnerDeletion false).
    controller.allow(['get', 'list', 'watch', 'create', 'delete'], res(GROUP, PLURAL));
    controller.allow(['get', 'update', 'patch'], res(GROUP, `${PLURAL}/status`));
    controller.allow(['get', 'list', 'watch', 'create', 'delete'], res('batch', 'jobs'));
    controller.allow(['list', 'watch'], res('', 'pods'));
    // `list`: a worker Job without pods is checked for FailedCreate Events (its pod rejected by admission).
    controller.allow(['create', 'list'], res('', 'events'));
    controller.allow(['get', 'update'], res('coordination.k8s.io', 'leases', NAMES.leases.controller));
    controller.allow(['get'], res('', 'configmaps', NAMES.workerConfigMap));
    controller.allow(['get', 'update'], res('', 'configmaps', NAMES.streamCheckpoint));
    this.bind(cfg, 'controller', controller, this.controllerSa);

    const compactor = new kplus.Role(this, 'compactor-role', {
      metadata: { name: NAMES.compactor, labels: labels(cfg, 'compactor') },
    });
    compactor.allow(['get', 'update'], res('coordination.k8s.io', 'leases', NAMES.leases.compactor));
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

import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';

import { imageRepository } from '../../core/contracts/image-reference.js';
import { NAMES, clusterName, labels } from '../common.js';
import type { EnvironmentConfig } from '../config.js';
import { OPENAI_SECRET } from '../../core/config/env.js';
import type { ChartProps } from './base.js';
import { ClusterChart } from './base.js';

/** Images worker Jobs may use: `worker.allowedImages`, or the repository of the environment's worker image. */
export function workerImageAllowlist(cfg: EnvironmentConfig): string[] {
  return cfg.worker.allowedImages ?? [imageRepository(cfg.images.worker)];
}

/** Secrets the worker's env may reference: the OpenAI key's, and the emulators' static AWS keys when configured. */
export function workerSecretAllowlist(cfg: EnvironmentConfig): string[] {
  return [OPENAI_SECRET.name, ...(cfg.aws.staticCredentialsSecret ? [cfg.aws.staticCredentialsSecret] : [])];
}

const celList = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/** CEL over every container of a Job's pod template (a template cannot carry ephemeral containers). */
const ALL_CONTAINERS =
  'object.spec.template.spec.containers + ' +
  '(has(object.spec.template.spec.initContainers) ? object.spec.template.spec.initContainers : [])';

/**
 * The allowlists as VAP variables (one field each, so a Kustomize overlay can replace a list without touching the
 * rules); the validations and their messages refer to them.
 */
export function workerJobVariables(cfg: EnvironmentConfig): { name: string; expression: string }[] {
  return [
    { name: 'allowedImages', expression: celList(workerImageAllowlist(cfg)) },
    { name: 'allowedSecrets', expression: celList(workerSecretAllowlist(cfg)) },
  ];
}

/** The CEL validations; the same rules as controller/worker-policy.ts. */
export function workerJobValidations(): { expression: string; message: string; messageExpression?: string }[] {
  const sa = JSON.stringify(NAMES.worker);
  const pod = 'object.spec.template.spec';
  return [
    {
      expression:
        `has(${pod}.serviceAccountName) && ${pod}.serviceAccountName == ${sa} && ` +
        `(!has(${pod}.serviceAccount) || ${pod}.serviceAccount == ${sa})`,
      message: `worker Jobs run as ServiceAccount ${NAMES.worker} only`,
    },
    {
      expression:
        `(${ALL_CONTAINERS}).all(c, variables.allowedImages.exists(p, c.image == p || ` +
        `((p.endsWith('/') || p.endsWith(':') || p.endsWith('@')) && c.image.startsWith(p)) || ` +
        `c.image.startsWith(p + ':') || c.image.startsWith(p + '@')))`,
      message: 'worker images must be one of the allowed images',
      messageExpression: `'worker images must be one of ' + variables.allowedImages.join(', ')`,
    },
    {
      expression:
        `(${ALL_CONTAINERS}).all(c, !has(c.envFrom) && (!has(c.env) || c.env.all(e, ` +
        `!has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || e.valueFrom.secretKeyRef.name in variables.allowedSecrets)))`,
      message: 'worker env may reference only the allowed Secrets (no envFrom)',
      messageExpression:
        `'worker env may reference only the Secrets ' + variables.allowedSecrets.join(', ') + ' (no envFrom)'`,
    },
    {
      // Secrets reach a pod through volumes too: the controller's Jobs mount only /tmp and the Chroma claim.
      expression: `!has(${pod}.volumes) || ${pod}.volumes.all(v, has(v.emptyDir) || has(v.persistentVolumeClaim))`,
      message: 'worker volumes are emptyDir or persistentVolumeClaim only',
    },
  ];
}

/**
 * A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.30) on the Jobs the controller's
 * ServiceAccount creates: the same rules as the controller's worker policy, so a compromised controller (its Role
 * may create Jobs) still cannot start pods as another ServiceAccount, with another image or reading other Secrets.
 */
export class AdmissionChart extends ClusterChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    const name = clusterName(cfg, 'worker-jobs');
    const controllerUser = `system:serviceaccount:${cfg.namespace}:${NAMES.controller}`;
    new ApiObject(this, 'worker-jobs-policy', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name, labels: labels(cfg, 'controller') },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': cfg.namespace } },
          resourceRules: [
            { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['jobs'] },
          ],
        },
        matchConditions: [
          { name: 'created-by-the-controller', expression: `request.userInfo.username == ${JSON.stringify(controllerUser)}` },
        ],
        variables: workerJobVariables(cfg),
        validations: workerJobValidations(),
      },
    });
    new ApiObject(this, 'worker-jobs-binding', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name, labels: labels(cfg, 'controller') },
      spec: { policyName: name, validationActions: ['Deny'] },
    });
  }
}

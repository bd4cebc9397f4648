import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import type { EnvironmentConfig } from '../config.js';
import {
  NAMES,
  PLUS_CONTAINER_SECURITY,
  PLUS_POD_SECURITY,
  applyRestrictedPatches,
  labels,
  plusEnv,
  plusResources,
  quantityToSize,
  resourceRequirements,
  selectorLabels,
} from '../common.js';
import type { Resources } from '../config.js';
import { ScaledObject, TriggerAuthentication } from '../crd-types.js';
import type { AwsSqsQueueTriggerMetadata, TriggerAuthenticationSpec } from '../crd-types.js';
import { CHROMA_MOUNT_PATH, ENV } from '../../core/config/env.js';
import { workerImageAllowlist, workerSecretAllowlist } from './admission.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

export interface WorkloadChartProps extends ChartProps {
  readonly serviceAccount: kplus.IServiceAccount;
}

const POD_SPEC = '/spec/template/spec';

/**
 * Make the output what the apiserver stores, so that a repeated `kubectl apply` is a no-op: drop zero/false fields
 * the server omits (minReadySeconds 0, hostNetwork false, readOnly false) and write quantities in the canonical form
 * the server returns (cdk8s-plus renders 2Gi as 2048Mi).
 */
function quantities(r: ReturnType<typeof resourceRequirements>): Record<string, Record<string, kplus.k8s.Quantity>> {
  const q = (m: Record<string, string>) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, kplus.k8s.Quantity.fromString(v)]));
  return { limits: q(r.limits), requests: q(r.requests) };
}

function normalizeDeployment(
  dep: kplus.Deployment,
  resources: Resources,
  tmpSize: string,
  extra: JsonPatch[] = [],
): void {
  const o = ApiObject.of(dep);
  o.addJsonPatch(
    JsonPatch.remove('/spec/minReadySeconds'),
    JsonPatch.remove(`${POD_SPEC}/hostNetwork`),
    // Values go through the L1 serializer after patching, so they must be Quantity objects there.
    JsonPatch.replace(`${POD_SPEC}/containers/0/resources`, quantities(resourceRequirements(resources))),
    JsonPatch.replace(`${POD_SPEC}/volumes/0/emptyDir/sizeLimit`, kplus.k8s.Quantity.fromString(tmpSize)),
    ...extra,
  );
}

function metricsAnnotations(cfg: EnvironmentConfig): Record<string, string> {
  return {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(cfg.metricsPort),
    'prometheus.io/path': '/metrics',
  };
}

function probes(cfg: EnvironmentConfig): Pick<kplus.ContainerProps, 'liveness' | 'readiness'> {
  return {
    liveness: kplus.Probe.fromHttpGet('/healthz', {
      port: cfg.metricsPort,
      initialDelaySeconds: Duration.seconds(10),
      periodSeconds: Duration.seconds(10),
      failureThreshold: 3,
    }),
    readiness: kplus.Probe.fromHttpGet('/readyz', {
      port: cfg.metricsPort,
      periodSeconds: Duration.seconds(5),
      failureThreshold: 3,
    }),
  };
}

function metricsService(
  scope: Construct,
  cfg: EnvironmentConfig,
  component: 'controller' | 'compactor',
): void {
  const svc = new kplus.Service(scope, 'metrics', {
    metadata: { name: `embedctl-${component}-metrics`, labels: labels(cfg, component) },
    ports: [{ name: 'metrics', port: cfg.metricsPort, targetPort: cfg.metricsPort, protocol: kplus.Protocol.TCP }],
  });
  for (const [k, v] of Object.entries(selectorLabels(cfg, component))) svc.selectLabel(k, v);
  ApiObject.of(svc).addJsonPatch(JsonPatch.remove('/spec/externalIPs'));
}

/** Controller: 2 replicas (one leader via its Lease), probes and metrics on one port, PDB, pod anti-affinity. */
export class ControllerChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: WorkloadChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    const tmpSize = '256Mi';
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: quantityToSize(tmpSize) });
    const dep = new kplus.Deployment(this, 'deployment', {
      metadata: { name: NAMES.controller, labels: labels(cfg, 'controller') },
      replicas: cfg.controller.replicas,
      select: false,
      podMetadata: { labels: labels(cfg, 'controller'), annotations: metricsAnnotations(cfg) },
      serviceAccount: props.serviceAccount,
      automountServiceAccountToken: true,
      securityContext: PLUS_POD_SECURITY,
      strategy: kplus.DeploymentStrategy.rollingUpdate({
        maxSurge: kplus.PercentOrAbsolute.absolute(1),
        maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
      }),
      terminationGracePeriod: Duration.seconds(30),
      volumes: [tmp],
      containers: [
        {
          name: 'controller',
          image: cfg.images.controller,
          imagePullPolicy: cfg.imagePullPolicy as kplus.ImagePullPolicy,
          args: [
            'controller',
            // The worker policy (controller/worker-policy.ts); the admission chart enforces the same lists.
            '--allowed-images',
            workerImageAllowlist(cfg).join(','),
            '--worker-secrets',
            workerSecretAllowlist(cfg).join(','),
            ...(cfg.controller.imagePullGraceSeconds === undefined
              ? []
              : ['--image-pull-grace', String(cfg.controller.imagePullGraceSeconds)]),
          ],
          ports: [{ name: 'metrics', number: cfg.metricsPort, protocol: kplus.Protocol.TCP }],
          envVariables: plusEnv(this, cfg, 'controller'),
          resources: plusResources(cfg.controller.resources),
          securityContext: PLUS_CONTAINER_SECURITY,
          volumeMounts: [{ path: '/tmp', volume: tmp }],
          ...probes(cfg),
        },
      ],
    });
    dep.select(kplus.LabelSelector.of({ labels: selectorLabels(cfg, 'controller') }));
    // Prefer one controller per node (the standby must survive the leader's node).
    dep.scheduling.spread({ topology: kplus.Topology.HOSTNAME, weight: 100 });
    applyRestrictedPatches(ApiObject.of(dep), POD_SPEC, 1);
    normalizeDeployment(dep, cfg.controller.resources, tmpSize);

    new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
      metadata: { name: NAMES.controller, labels: labels(cfg, 'controller') },
      spec: {
        minAvailable: kplus.k8s.IntOrString.fromNumber(cfg.controller.pdbMinAvailable),
        selector: { matchLabels: selectorLabels(cfg, 'controller') },
      },
    });
    metricsService(this, cfg, 'controller');
  }
}

/**
 * Compactor: a singleton (Recreate, at most one replica, fenced by its Lease) with the Chroma PVC mounted
 * read-write, scaled 0↔1 by KEDA on the LINES and WORDS queue depth. `replicas: 0` is only the initial value:
 * KEDA owns the replica count after install.
 */
export class CompactorChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: WorkloadChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    const tmp = kplus.Volume.fromEmptyDir(this, 'tmp', 'tmp', { sizeLimit: quantityToSize(cfg.compactor.scratchSize) });
    // Remote storage mode: no shared volume, the compactor writes to the Chroma server (CHROMA_URL).
    const chroma =
      cfg.storage.mode === 'remote'
        ? undefined
        : kplus.Volume.fromPersistentVolumeClaim(
            this,
            'chroma',
            kplus.PersistentVolumeClaim.fromClaimName(this, 'pvc', NAMES.pvc),
            { name: 'chroma' },
          );
    const dep = new kplus.Deployment(this, 'deployment', {
      metadata: { name: NAMES.compactor, labels: labels(cfg, 'compactor') },
      replicas: 0,
      select: false,
      podMetadata: { labels: labels(cfg, 'compactor'), annotations: metricsAnnotations(cfg) },
      serviceAccount: props.serviceAccount,
      automountServiceAccountToken: true,
      securityContext: PLUS_POD_SECURITY,
      strategy: kplus.DeploymentStrategy.recreate(),
      terminationGracePeriod: Duration.seconds(120),
      volumes: chroma ? [tmp, chroma] : [tmp],
      containers: [
        {
          name: 'compactor',
          image: cfg.images.compactor,
          imagePullPolicy: cfg.imagePullPolicy as kplus.ImagePullPolicy,
          args: ['compactor'],
          ports: [{ name: 'metrics', number: cfg.metricsPort, protocol: kplus.Protocol.TCP }],
          envVariables: plusEnv(this, cfg, 'compactor'),
          resources: plusResources(cfg.compactor.resources),
          securityContext: PLUS_CONTAINER_SECURITY,
          volumeMounts: [
            { path: '/tmp', volume: tmp },
            ...(chroma ? [{ path: CHROMA_MOUNT_PATH, volume: chroma }] : []),
          ],
          ...probes(cfg),
        },
      ],
    });
    dep.select(kplus.LabelSelector.of({ labels: selectorLabels(cfg, 'compactor') }));
    applyRestrictedPatches(ApiObject.of(dep), POD_SPEC, 1);
    normalizeDeployment(
      dep,
      cfg.compactor.resources,
      cfg.compactor.scratchSize,
      chroma
        ? [
            JsonPatch.remove(`${POD_SPEC}/containers/0/volumeMounts/1/readOnly`),
            JsonPatch.remove(`${POD_SPEC}/volumes/1/persistentVolumeClaim/readOnly`),
          ]
        : [],
    );
    metricsService(this, cfg, 'compactor');

    const keda = cfg.compactor.keda;
    let authSpec: TriggerAuthenticationSpec;
    if (cfg.aws.staticCredentialsSecret) {
      const secret = cfg.aws.staticCredentialsSecret;
      authSpec = {
        secretTargetRef: [
          { parameter: 'awsAccessKeyID', name: secret, key: ENV.AWS_ACCESS_KEY_ID },
          { parameter: 'awsSecretAccessKey', name: secret, key: ENV.AWS_SECRET_ACCESS_KEY },
        ],
      };
    } else if (keda.roleArn) {
      authSpec = { podIdentity: { provider: 'aws', roleArn: keda.roleArn } };
    } else {
      authSpec = { podIdentity: { provider: 'aws', identityOwner: keda.identityOwner } };
    }
    new TriggerAuthentication(this, 'trigger-auth', {
      metadata: { name: NAMES.triggerAuth, labels: labels(cfg, 'compactor') },
      spec: authSpec,
    });

    const trigger = (queueURL: string): AwsSqsQueueTriggerMetadata => ({
      queueURL,
      awsRegion: cfg.aws.region,
      queueLength: String(keda.queueLength),
      activationQueueLength: '0',
      scaleOnInFlight: 'true',
      ...(cfg.aws.endpoint ? { awsEndpoint: cfg.aws.endpoint } : {}),
    });
    new ScaledObject(this, 'scaled-object', {
      metadata: { name: NAMES.compactor, labels: labels(cfg, 'compactor') },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: NAMES.compactor },
        pollingInterval: keda.pollingInterval,
        cooldownPeriod: keda.cooldownPeriod,
        minReplicaCount: 0,
        maxReplicaCount: 1,
        triggers: [
          {
            type: 'aws-sqs-queue',
            name: 'lines',
            metadata: trigger(cfg.queues.lines),
            authenticationRef: { name: NAMES.triggerAuth },
          },
          {
            type: 'aws-sqs-queue',
            name: 'words',
            metadata: trigger(cfg.queues.words),
            authenticationRef: { name: NAMES.triggerAuth },
          },
        ],
      },
    });
  }
}

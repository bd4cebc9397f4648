/**
 * Typed configuration of one deployment environment. `npm run synth` picks an environment by name (`--env`,
 * default `dev`), optionally deep-merges a JSON file of overrides (`--values file.json`), validates the result with
 * zod and synthesizes the charts from it. docs/deploy.md lists every value.
 */
import { readFileSync } from 'node:fs';

import { z } from 'zod';

/** Kubernetes quantity strings, e.g. `250m`, `1`, `512Mi`, `2Gi`. */
const cpuQuantity = z.string().regex(/^(\d+m|\d+(\.\d+)?)$/, 'CPU quantity like 250m or 1');
const memQuantity = z.string().regex(/^\d+(Ki|Mi|Gi|Ti)$/, 'memory quantity like 512Mi or 2Gi');

export const Resources = z.object({
  cpuRequest: cpuQuantity,
  cpuLimit: cpuQuantity,
  memoryRequest: memQuantity,
  memoryLimit: memQuantity,
  /** Request and limit of ephemeral storage (covers the /tmp emptyDir). */
  ephemeralStorage: memQuantity.optional(),
});
export type Resources = z.infer<typeof Resources>;

const sqsUrl = z
  .string()
  .url()
  .regex(
    /\/\d{12}\/[A-Za-z0-9_.-]+$/,
    'SQS queue URL ending in /<12-digit account>/<name> (KEDA needs this)',
  );
const arn = z.string().regex(/^arn:aws[a-z-]*:/, 'an ARN');

const port = z.number().int().min(1).max(65535);
/** Where a component may connect: IPv4/IPv6 CIDRs and TCP ports (NetworkPolicy ipBlocks cannot name hosts). */
export const EgressTarget = z.object({
  cidrs: z.array(z.string().regex(/^[0-9a-fA-F.:]+\/\d{1,3}$/, 'a CIDR like 10.0.0.0/16')).min(1),
  ports: z.array(port).min(1),
});
export type EgressTarget = z.infer<typeof EgressTarget>;

/** Shared Chroma volume (ReadWriteMany), or (`remote`) no volume at all: a Chroma server the pods reach over HTTP. */
export const Storage = z.discriminatedUnion('mode', [
  z.object({
    /** Dynamic provisioning by the EFS CSI driver: one access point, owned by uid/gid (fsGroup is ignored on EFS). */
    mode: z.literal('efs-dynamic'),
    fileSystemId: z.string().regex(/^fs-[0-9a-f]+$/),
    storageClassName: z.string().default('embedctl-efs'),
    uid: z.number().int().positive().default(10001),
    gid: z.number().int().positive().default(10001),
    directoryPerms: z
      .string()
      .regex(/^[0-7]{3,4}$/)
      .default('700'),
    basePath: z.string().default('/receipt-embeddings'),
    size: memQuantity.default('100Gi'),
  }),
  z.object({
    /** One static PV over an existing file system (optionally an access point made by your IaC with uid 10001). */
    mode: z.literal('efs-static'),
    fileSystemId: z.string().regex(/^fs-[0-9a-f]+$/),
    accessPointId: z
      .string()
      .regex(/^fsap-[0-9a-f]+$/)
      .optional(),
    size: memQuantity.default('100Gi'),
  }),
  z.object({
    /** kind / single-node clusters only: a hostPath-backed PV declared ReadWriteMany. */
    mode: z.literal('hostPath'),
    path: z.string().startsWith('/'),
    size: memQuantity.default('10Gi'),
  }),
  z.object({
    /**
     * VECTOR_STORE=remote (docs/adr/0013-remote-vector-store.md): the compactor writes and workers query a Chroma
     * server (single-node or distributed, same API); no PV, PVC or volume mounts, no snapshots in S3.
     */
    mode: z.literal('remote'),
    url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'an http(s) URL'),
    tenant: z.string().min(1).default('default_tenant'),
    database: z.string().min(1).default('default_database'),
    /** Where the server answers (its Service's cluster IPs or load balancer), for the compactor's and workers' egress. */
    egress: EgressTarget,
  }),
]);
export type Storage = z.infer<typeof Storage>;

export const EnvironmentConfig = z.object({
  /** Environment name; also the `app.kubernetes.io/instance` label. */
  name: z.string().regex(/^[a-z0-9-]+$/),
  namespace: z.string().regex(/^[a-z0-9-]{1,63}$/),
  /** One image per program (Dockerfile targets; docs/adr/0016): the controller hosts the stream processor. */
  images: z.object({
    controller: z.string().min(1),
    worker: z.string().min(1),
    compactor: z.string().min(1),
  }),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  aws: z.object({
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
    /** Endpoint override for emulators (kind). Unset on EKS. Also becomes KEDA's `awsEndpoint`. */
    endpoint: z.string().url().optional(),
    /**
     * Name of a Secret with keys `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` mounted as env (and used by KEDA's
     * TriggerAuthentication) instead of pod identity. Only for emulators (kind); never for EKS.
     */
    staticCredentialsSecret: z.string().optional(),
  }),
  queues: z.object({
    embed: sqsUrl,
    embedDlq: sqsUrl,
    lines: sqsUrl,
    words: sqsUrl,
    compactionDlq: sqsUrl,
  }),
  buckets: z.object({
    artifacts: z.string().min(3),
    vectors: z.string().min(3),
    /** Further buckets EMBED messages may name (ARTIFACTS_BUCKETS_ALLOWED); every other bucket is refused. */
    allowedArtifacts: z.array(z.string().min(3)).default([]),
  }),
  ledger: z.object({ table: z.string().min(3), streamArn: arn.optional() }),
  /** How pods get AWS credentials: IRSA annotations (default) or EKS Pod Identity associations (no annotation). */
  identity: z.enum(['irsa', 'pod-identity']).default('irsa'),
  iam: z.object({
    controllerRoleArn: arn.optional(),
    workerRoleArn: arn.optional(),
    compactorRoleArn: arn.optional(),
  }),
  storage: Storage,
  /**
   * Where pods reach the apiserver, when the `kubernetes` Service is not routed (a node without kube-proxy: the
   * `node` environment). Unset everywhere else: the kubelet's KUBERNETES_SERVICE_HOST/PORT apply.
   */
  kubernetesApi: z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).optional(),
  embedding: z.object({
    model: z.string().default('text-embedding-3-small'),
    dimensions: z.number().int().positive().default(1536),
    baseUrl: z.string().url().optional(),
  }),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  metricsPort: z.number().int().min(1024).max(65535).default(9090),
  controller: z.object({
    replicas: z.number().int().min(1).default(2),
    resources: Resources,
    /** PodDisruptionBudget minAvailable (at most replicas - 1 so that drains can proceed). */
    pdbMinAvailable: z.number().int().min(0).default(1),
    /** `--image-pull-grace`: how long a worker pod may wait for its image before its items are retried. */
    imagePullGraceSeconds: z.number().int().min(0).optional(),
  }),
  compactor: z.object({
    resources: Resources,
    /** Size of the /tmp emptyDir the compactor builds new versions in before publishing. */
    scratchSize: memQuantity.default('20Gi'),
    /**
     * Immutable segments (docs/adr/0012-immutable-segments.md): COMPACTOR_SEAL_VECTORS, the hot segment's least size
     * at a seal, and COMPACTOR_MERGE_RATIO, the merge policy's fraction of the largest sealed segment (compactor/
     * merge-policy.ts). Not set for the remote vector store (no versions, no segments).
     */
    segments: z
      .object({
        sealVectors: z.number().int().positive().default(8000),
        mergeRatio: z.number().positive().max(1).default(0.05),
      })
      .prefault({}),
    keda: z.object({
      pollingInterval: z.number().int().positive().default(30),
      cooldownPeriod: z.number().int().positive().default(300),
      /** Messages per replica (KEDA target); with max 1 replica any non-empty queue scales to 1. */
      queueLength: z.number().int().positive().default(1),
      /**
       * Who assumes the AWS role for GetQueueAttributes. `keda` (default): the KEDA operator's own role, which needs
       * only sqs:GetQueueAttributes. `workload` lets the cluster-wide operator assume the compactor's whole role.
       */
      identityOwner: z.enum(['keda', 'workload']).default('keda'),
      /** Alternative to identityOwner: an explicit role KEDA assumes (mutually exclusive with identityOwner). */
      roleArn: arn.optional(),
    }),
  }),
  worker: z.object({
    resources: Resources,
    activeDeadlineSeconds: z.number().int().positive().default(1800),
    backoffLimit: z.number().int().min(0).default(2),
    ttlSecondsAfterFinished: z.number().int().min(0).default(3600),
    batchSize: z.number().int().positive().default(20),
    batchWindowSeconds: z.number().int().min(0).default(10),
    maxActivePods: z.number().int().positive().default(4),
    scratchSize: memQuantity.default('10Gi'),
    /**
     * Images worker Jobs may use (controller --allowed-images and the admission policy): repositories (any tag or
     * digest), prefixes ending in `/`, `:` or `@`, or exact references. Default: the repository of `images.worker`.
     */
    allowedImages: z.array(z.string().min(1)).min(1).optional(),
  }),
  network: z.object({
    /** Labels of the namespace Prometheus scrapes from (ingress to the metrics port is allowed from there only). */
    metricsNamespaceSelector: z
      .record(z.string(), z.string())
      .default({ 'kubernetes.io/metadata.name': 'monitoring' }),
    /** Where DNS is answered: the only DNS egress allowed (UDP/TCP 53). Pods of a node without DNS use none. */
    dns: z
      .object({
        namespaceSelector: z.record(z.string(), z.string()),
        podSelector: z.record(z.string(), z.string()),
      })
      .default({
        namespaceSelector: { 'kubernetes.io/metadata.name': 'kube-system' },
        podSelector: { 'k8s-app': 'kube-dns' },
      }),
    /** The apiserver's endpoint addresses (on EKS the control-plane ENIs in the VPC) and port: every component. */
    apiServer: EgressTarget,
    /** AWS endpoints: VPC interface endpoint subnets and the S3/DynamoDB gateway prefix lists' CIDRs. Every component. */
    aws: EgressTarget,
    /**
     * The embeddings API (OpenAI), workers only. api.openai.com has no fixed addresses: point this at an egress proxy
     * (docs/deploy.md) or keep 0.0.0.0/0 and narrow it with an FQDN-aware CNI policy.
     */
    embeddingApi: EgressTarget.default({ cidrs: ['0.0.0.0/0'], ports: [443] }),
  }),
  monitoring: z.object({
    /** Emit a Prometheus Operator ServiceMonitor (needs its CRD in the cluster). */
    serviceMonitor: z.boolean().default(false),
    serviceMonitorLabels: z.record(z.string(), z.string()).default({}),
    scrapeInterval: z.string().default('30s'),
    /** The PrometheusRule (needs its CRD in the cluster) and its thresholds; docs/deploy.md lists the alerts. */
    alerts: z
      .object({
        enabled: z.boolean().default(false),
        /** Labels Prometheus's ruleSelector matches (kube-prometheus-stack: `release`). */
        labels: z.record(z.string(), z.string()).default({}),
        /** Messages dead-lettered within this window fire EmbedctlMessagesDeadLettered. */
        deadLetterWindowMinutes: z.number().int().positive().default(15),
        /** p90 CompactionRun lag; at most 15 because the lag histogram's top bucket is 900 s. */
        compactionLagMinutes: z.number().positive().max(15).default(5),
        /** How long no controller replica may hold the leader Lease. */
        noLeaderMinutes: z.number().int().positive().default(5),
        /** Share of EmbeddingJobs ending Failed (over 30 minutes) that fires EmbedctlWorkerFailureRate. */
        workerFailureRatio: z.number().gt(0).max(1).default(0.1),
        /** Compactor container restarts within 30 minutes (a lost Lease exits the process). */
        compactorRestarts: z.number().int().positive().default(3),
        /** Age of the oldest publish not yet mirrored to S3. */
        s3MirrorStaleMinutes: z.number().int().positive().default(30),
      })
      .prefault({}),
  }),
});
export type EnvironmentConfig = z.infer<typeof EnvironmentConfig>;
export type EnvironmentInput = z.input<typeof EnvironmentConfig>;

const ACCOUNT = '123456789012';
/** kind only: placeholder in-cluster Service of an AWS emulator (moto / ElasticMQ); see tools/kind/up.sh. */
export const KIND_AWS_ENDPOINT = 'http://aws-emulator.aws-emulator.svc.cluster.local:5000';
const kindSqs = (name: string): string => `${KIND_AWS_ENDPOINT}/000000000000/${name}`;
/** node only: the address of the node's bridge, where the harness binds moto, the embedder and the apiserver. */
export const NODE_BRIDGE_IP = '10.244.77.1';
/** node only: where the harness serves the apiserver, moto (every AWS service) and the embeddings endpoint. */
export const NODE_PORTS = { apiserver: 6443, aws: 5000, embeddings: 8000 } as const;
const NODE_AWS_ENDPOINT = `http://${NODE_BRIDGE_IP}:${NODE_PORTS.aws}`;
const nodeSqs = (name: string): string => `${NODE_AWS_ENDPOINT}/123456789012/${name}`;
const sqs = (region: string, name: string): string =>
  `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${name}`;

/** The three images of one build (tools/image/build.sh names them `<prefix>-<program>:<tag>`). */
const images = (prefix: string, tag: string): EnvironmentInput['images'] => ({
  controller: `${prefix}-controller:${tag}`,
  worker: `${prefix}-worker:${tag}`,
  compactor: `${prefix}-compactor:${tag}`,
});
const ECR_PREFIX = `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/receipt-embeddings`;

const smallResources = { cpuRequest: '100m', cpuLimit: '500m', memoryRequest: '256Mi', memoryLimit: '512Mi' };

/**
 * The built-in environments. `dev` and `prod` carry placeholder account ids, ARNs and file system ids: copy one,
 * or override with `--values`, before applying to a real cluster (docs/deploy.md).
 */
export const ENVIRONMENTS = {
  dev: {
    name: 'dev',
    namespace: 'receipt-embeddings',
    images: images(ECR_PREFIX, '0.1.0'),
    aws: { region: 'us-east-1' },
    queues: {
      embed: sqs('us-east-1', 'receipt-embed-dev'),
      embedDlq: sqs('us-east-1', 'receipt-embed-dlq-dev'),
      lines: sqs('us-east-1', 'receipt-lines-dev'),
      words: sqs('us-east-1', 'receipt-words-dev'),
      compactionDlq: sqs('us-east-1', 'receipt-compaction-dlq-dev'),
    },
    buckets: { artifacts: 'receipt-artifacts-dev', vectors: 'receipt-vectors-dev' },
    ledger: { table: 'receipts-dev' },
    iam: {
      controllerRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-dev-controller`,
      workerRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-dev-worker`,
      compactorRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-dev-compactor`,
    },
    storage: { mode: 'efs-dynamic', fileSystemId: 'fs-0123456789abcdef0', size: '20Gi' },
    embedding: {},
    controller: { replicas: 2, resources: smallResources },
    compactor: {
      resources: {
        cpuRequest: '500m',
        cpuLimit: '1',
        memoryRequest: '1Gi',
        memoryLimit: '2Gi',
        ephemeralStorage: '20Gi',
      },
      keda: {},
    },
    worker: {
      resources: {
        cpuRequest: '250m',
        cpuLimit: '1',
        memoryRequest: '512Mi',
        memoryLimit: '1Gi',
        ephemeralStorage: '10Gi',
      },
      maxActivePods: 2,
    },
    // Placeholders (a VPC of 10.0.0.0/16 with the control plane and interface endpoints in it): set your own.
    network: {
      apiServer: { cidrs: ['10.0.0.0/16'], ports: [443] },
      aws: { cidrs: ['10.0.0.0/16'], ports: [443] },
    },
    monitoring: {},
  },
  prod: {
    name: 'prod',
    namespace: 'receipt-embeddings',
    images: images(ECR_PREFIX, '0.1.0'),
    imagePullPolicy: 'IfNotPresent',
    aws: { region: 'us-east-1' },
    queues: {
      embed: sqs('us-east-1', 'receipt-embed'),
      embedDlq: sqs('us-east-1', 'receipt-embed-dlq'),
      lines: sqs('us-east-1', 'receipt-lines'),
      words: sqs('us-east-1', 'receipt-words'),
      compactionDlq: sqs('us-east-1', 'receipt-compaction-dlq'),
    },
    buckets: { artifacts: 'receipt-artifacts', vectors: 'receipt-vectors' },
    ledger: {
      table: 'receipts',
      streamArn: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/receipts/stream/2026-01-01T00:00:00.000`,
    },
    iam: {
      controllerRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-controller`,
      workerRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-worker`,
      compactorRoleArn: `arn:aws:iam::${ACCOUNT}:role/receipt-embeddings-compactor`,
    },
    storage: {
      mode: 'efs-static',
      fileSystemId: 'fs-0123456789abcdef0',
      accessPointId: 'fsap-0123456789abcdef0',
    },
    embedding: {},
    controller: {
      replicas: 2,
      resources: { cpuRequest: '200m', cpuLimit: '1', memoryRequest: '512Mi', memoryLimit: '1Gi' },
    },
    compactor: {
      resources: {
        cpuRequest: '1',
        cpuLimit: '2',
        memoryRequest: '2Gi',
        memoryLimit: '4Gi',
        ephemeralStorage: '40Gi',
      },
      scratchSize: '40Gi',
      keda: { pollingInterval: 60, cooldownPeriod: 600 },
    },
    worker: {
      resources: {
        cpuRequest: '500m',
        cpuLimit: '2',
        memoryRequest: '1Gi',
        memoryLimit: '2Gi',
        ephemeralStorage: '20Gi',
      },
      maxActivePods: 10,
      batchSize: 50,
      scratchSize: '20Gi',
    },
    network: {
      apiServer: { cidrs: ['10.0.0.0/16'], ports: [443] },
      aws: { cidrs: ['10.0.0.0/16'], ports: [443] },
    },
    monitoring: {
      serviceMonitor: true,
      serviceMonitorLabels: { release: 'kube-prometheus-stack' },
      alerts: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    },
  },
  kind: {
    name: 'kind',
    namespace: 'receipt-embeddings',
    images: images('localhost/receipt-embeddings', 'dev'),
    imagePullPolicy: 'Never',
    aws: {
      region: 'us-east-1',
      // Placeholder in-cluster Service of an SQS/S3/DynamoDB emulator (moto or ElasticMQ); tools/kind/up.sh notes it.
      endpoint: KIND_AWS_ENDPOINT,
      staticCredentialsSecret: 'aws-emulator-credentials',
    },
    queues: {
      embed: kindSqs('receipt-embed'),
      embedDlq: kindSqs('receipt-embed-dlq'),
      lines: kindSqs('receipt-lines'),
      words: kindSqs('receipt-words'),
      compactionDlq: kindSqs('receipt-compaction-dlq'),
    },
    buckets: { artifacts: 'receipt-artifacts', vectors: 'receipt-vectors' },
    ledger: { table: 'receipts' },
    iam: {},
    storage: { mode: 'hostPath', path: '/var/local/receipt-embeddings/chroma', size: '5Gi' },
    embedding: {},
    logLevel: 'debug',
    controller: { replicas: 2, resources: smallResources, pdbMinAvailable: 1 },
    compactor: {
      resources: { ...smallResources, memoryLimit: '1Gi', ephemeralStorage: '2Gi' },
      scratchSize: '2Gi',
      keda: { pollingInterval: 15, cooldownPeriod: 60 },
    },
    worker: {
      resources: { ...smallResources, ephemeralStorage: '2Gi' },
      maxActivePods: 2,
      scratchSize: '2Gi',
    },
    // kind: the apiserver on the node containers' docker network; the emulator is a pod (pod CIDR) on 5000.
    network: {
      apiServer: { cidrs: ['172.18.0.0/16'], ports: [6443] },
      aws: { cidrs: ['10.244.0.0/16'], ports: [5000] },
    },
    monitoring: {},
  },
  /**
   * The real node of the test environment and of `npm run cluster` (test/harness/node/): kubelet + containerd on
   * this machine, no kube-proxy and no DNS, every outside server on the node's bridge address (a bridge the harness
   * creates, so these fixed ports cannot clash with anything else on the machine).
   */
  node: {
    name: 'node',
    namespace: 'receipt-embeddings',
    images: images('localhost/receipt-embeddings', 'dev'),
    imagePullPolicy: 'Never',
    aws: {
      region: 'us-east-1',
      endpoint: NODE_AWS_ENDPOINT,
      staticCredentialsSecret: 'aws-static',
    },
    queues: {
      embed: nodeSqs('receipt-embed'),
      embedDlq: nodeSqs('receipt-embed-dlq'),
      lines: nodeSqs('receipt-lines'),
      words: nodeSqs('receipt-words'),
      compactionDlq: nodeSqs('receipt-compaction-dlq'),
    },
    buckets: { artifacts: 'receipt-artifacts', vectors: 'receipt-vectors' },
    ledger: { table: 'receipts' },
    iam: {},
    storage: { mode: 'hostPath', path: '/var/local/receipt-embeddings/chroma', size: '5Gi' },
    kubernetesApi: { host: NODE_BRIDGE_IP, port: NODE_PORTS.apiserver },
    embedding: { baseUrl: `http://${NODE_BRIDGE_IP}:${NODE_PORTS.embeddings}/v1` },
    // Images are imported, never pulled: a missing one will not appear by waiting, so give up on it sooner.
    controller: { replicas: 2, resources: smallResources, pdbMinAvailable: 1, imagePullGraceSeconds: 20 },
    compactor: {
      // The whole node: the compactor bounds the burst's wall time, and workers leave CPU idle between waves.
      resources: { ...smallResources, cpuLimit: '2', memoryLimit: '1536Mi', ephemeralStorage: '2Gi' },
      scratchSize: '2Gi',
      keda: { pollingInterval: 5, cooldownPeriod: 15 },
    },
    worker: {
      resources: { ...smallResources, cpuLimit: '1', memoryLimit: '1Gi', ephemeralStorage: '2Gi' },
      maxActivePods: 2,
      batchSize: 20,
      batchWindowSeconds: 2,
      scratchSize: '2Gi',
    },
    // Every outside server listens on the bridge address, each on its own port.
    network: {
      apiServer: { cidrs: [`${NODE_BRIDGE_IP}/32`], ports: [NODE_PORTS.apiserver] },
      aws: { cidrs: [`${NODE_BRIDGE_IP}/32`], ports: [NODE_PORTS.aws] },
      embeddingApi: { cidrs: [`${NODE_BRIDGE_IP}/32`], ports: [NODE_PORTS.embeddings] },
    },
    // The harness's Prometheus scrapes and evaluates rules this often: short-lived worker and compactor pods are
    // seen, and the e2e's alert fires within seconds.
    monitoring: { scrapeInterval: '2s' },
  },
} satisfies Record<string, EnvironmentInput>;

export type EnvironmentName = keyof typeof ENVIRONMENTS;
export const ENVIRONMENT_NAMES = Object.keys(ENVIRONMENTS) as EnvironmentName[];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge for overrides: objects merge key by key, everything else (arrays included) replaces. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = deepMerge(base[k], v);
  return out;
}

/** Validates and returns the named environment, with optional overrides (e.g. parsed from `--values`). */
export function loadEnvironment(name: string, overrides?: unknown): EnvironmentConfig {
  if (!(name in ENVIRONMENTS)) {
    throw new Error(`unknown environment "${name}"; known: ${ENVIRONMENT_NAMES.join(', ')}`);
  }
  const base = ENVIRONMENTS[name as EnvironmentName];
  const merged = overrides === undefined ? base : deepMerge(base, overrides);
  const parsed = EnvironmentConfig.safeParse(merged);
  if (!parsed.success) {
    throw new Error(`invalid configuration for "${name}":\n${z.prettifyError(parsed.error)}`);
  }
  const cfg = parsed.data;
  if (cfg.controller.pdbMinAvailable >= cfg.controller.replicas && cfg.controller.replicas > 1) {
    throw new Error('controller.pdbMinAvailable must be below controller.replicas, or node drains block');
  }
  return cfg;
}

/** Reads a JSON overrides file for `--values`. */
export function readOverrides(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}

/**
 * Environment variables the programs (`embedctl controller | worker | compactor`, the stream processor, local mode)
 * read, and the charts set.
 *
 * The single list of names: every variable any program reads is named here, the cdk8s app (cdk8s/charts/*.ts) writes
 * the deployed ones into pod specs, and each program parses its own with one zod schema (core/config/<program>.ts,
 * controller/config.ts), whose errors name the variable and the bad value. Nothing else reads `process.env`.
 *
 * `ENV_VARS` lists the variables the charts set: `usedBy` says which programs receive them, `required` whether the
 * charts always set them. The tuning variables below them (COMPACTOR_*, STREAM_*, …) are never set by the charts;
 * their defaults are in the schemas. Changing a name here changes the charts on the next `npm run synth` (the drift
 * test then demands a re-synth).
 */

/** The process environment, or one a caller passes (tests, local mode's children). */
export type Env = Readonly<Record<string, string | undefined>>;

/** The only read of `process.env`: programs call it at their edge and pass the result down. */
export function processEnv(): Env {
  return process.env;
}

export type Program = 'controller' | 'worker' | 'compactor';

export interface EnvVarSpec {
  /** The variable name as it appears in the pod environment. */
  readonly name: string;
  readonly description: string;
  readonly usedBy: readonly Program[];
  /** True when the charts always set it; false when it appears only if configured (e.g. AWS_ENDPOINT_URL). */
  readonly required: boolean;
  /** The value the charts use when the environment config does not override it (documentation only). */
  readonly default?: string;
}

export const ENV = {
  /** SQS queue of EMBED messages (docs/adr/0009-wire-contracts.md). Controller ingest long-polls it. */
  EMBED_QUEUE_URL: 'EMBED_QUEUE_URL',
  /** Dead-letter queue for invalid EMBED messages (reason as a message attribute). */
  EMBED_DLQ_URL: 'EMBED_DLQ_URL',
  /** SQS queue of LINES compaction messages (stream processor → compactor). */
  LINES_QUEUE_URL: 'LINES_QUEUE_URL',
  /** SQS queue of WORDS compaction messages (stream processor → compactor). */
  WORDS_QUEUE_URL: 'WORDS_QUEUE_URL',
  /** Dead-letter queue for compaction messages that fail repeatedly. */
  COMPACTION_DLQ_URL: 'COMPACTION_DLQ_URL',
  /** S3 bucket of receipt artifacts (lines.ndjson / words.ndjson). Messages also name their bucket. */
  ARTIFACTS_BUCKET: 'ARTIFACTS_BUCKET',
  /** Optional comma-separated buckets a message may name besides ARTIFACTS_BUCKET (every other one is refused). */
  ARTIFACTS_BUCKETS_ALLOWED: 'ARTIFACTS_BUCKETS_ALLOWED',
  /** S3 bucket for deltas and snapshots (`{collection}/delta/...`, `{collection}/snapshot/...`). */
  VECTORS_BUCKET: 'VECTORS_BUCKET',
  /** DynamoDB single table (CompactionRun rows, labels, places, sections). */
  LEDGER_TABLE: 'LEDGER_TABLE',
  /** DynamoDB Streams ARN of LEDGER_TABLE; optional (the controller can look it up with DescribeTable). */
  LEDGER_STREAM_ARN: 'LEDGER_STREAM_ARN',
  /** AWS region for every SDK client. */
  AWS_REGION: 'AWS_REGION',
  /** Optional endpoint override for every AWS SDK client (kind / local emulators). Unset on EKS. */
  AWS_ENDPOINT_URL: 'AWS_ENDPOINT_URL',
  /** Root of the shared Chroma volume (EFS on EKS, hostPath PV on kind). */
  CHROMA_ROOT: 'CHROMA_ROOT',
  /**
   * Where the vectors live (core/config/vector-store.ts): `volume` (default: snapshot versions on CHROMA_ROOT, mirrored
   * to S3) or `remote` (a Chroma server at CHROMA_URL that the compactor writes and workers query;
   * docs/adr/0013-remote-vector-store.md).
   */
  VECTOR_STORE: 'VECTOR_STORE',
  /** `remote` mode: base URL of the Chroma server (http or https), e.g. http://chroma.chroma.svc:8000. */
  CHROMA_URL: 'CHROMA_URL',
  /** `remote` mode: Chroma tenant and database of the collections (defaults default_tenant / default_database). */
  CHROMA_TENANT: 'CHROMA_TENANT',
  CHROMA_DATABASE: 'CHROMA_DATABASE',
  /** Namespace the program runs in (downward API `metadata.namespace`). */
  NAMESPACE: 'NAMESPACE',
  /** Name of this pod (downward API `metadata.name`); used as the Lease holder identity. */
  POD_NAME: 'POD_NAME',
  /** Name of the worker Job a worker pod runs in; the controller sets it on each worker Job it builds. */
  WORKER_JOB_NAME: 'WORKER_JOB_NAME',
  /** Name of the ConfigMap with worker Job settings the controller reads (keys: see WORKER_CONFIG_KEYS). */
  WORKER_CONFIGMAP: 'WORKER_CONFIGMAP',
  /** Port of the HTTP server with /metrics, /healthz and /readyz. */
  METRICS_PORT: 'METRICS_PORT',
  /** API key for the embedding provider; from Secret `openai`, key `api-key` (optional secret ref). */
  OPENAI_API_KEY: 'OPENAI_API_KEY',
  /** Base URL of an OpenAI-compatible embeddings API; unset means api.openai.com. */
  OPENAI_BASE_URL: 'OPENAI_BASE_URL',
  /** Embedding model name, e.g. text-embedding-3-small. */
  EMBEDDING_MODEL: 'EMBEDDING_MODEL',
  /** Vector dimension of EMBEDDING_MODEL, e.g. 1536. */
  EMBEDDING_DIMENSIONS: 'EMBEDDING_DIMENSIONS',
  /** Log level for pino (trace, debug, info, warn, error). */
  LOG_LEVEL: 'LOG_LEVEL',
  /** Name of the coordination.k8s.io Lease this program holds (controller leader election, compactor fencing). */
  LEASE_NAME: 'LEASE_NAME',
  /** Static AWS credentials: set only for emulators (kind), from the Secret named by the kind config. */
  AWS_ACCESS_KEY_ID: 'AWS_ACCESS_KEY_ID',
  AWS_SECRET_ACCESS_KEY: 'AWS_SECRET_ACCESS_KEY',
  /**
   * Where in-cluster clients reach the apiserver. The kubelet sets them from the `kubernetes` Service; the charts set
   * them only on a node without kube-proxy (environment `node`), where that Service's ClusterIP is not routed.
   */
  KUBERNETES_SERVICE_HOST: 'KUBERNETES_SERVICE_HOST',
  KUBERNETES_SERVICE_PORT: 'KUBERNETES_SERVICE_PORT',
  /** kubeconfig files (colon-separated) when not in a cluster. */
  KUBECONFIG: 'KUBECONFIG',
  /** Region fallback the AWS SDK also honours when AWS_REGION is unset. */
  AWS_DEFAULT_REGION: 'AWS_DEFAULT_REGION',
  /** Per-attempt AWS HTTP timeouts in milliseconds (core/aws/config.ts DEFAULT_AWS_TIMEOUTS). */
  AWS_CONNECT_TIMEOUT_MS: 'AWS_CONNECT_TIMEOUT_MS',
  AWS_REQUEST_TIMEOUT_MS: 'AWS_REQUEST_TIMEOUT_MS',

  /** Compactor: a file lease (local mode, tests) instead of the Kubernetes Lease LEASE_NAME. */
  LEASE_FILE: 'LEASE_FILE',
  /** Compactor: lease duration in milliseconds. */
  LEASE_DURATION_MS: 'LEASE_DURATION_MS',
  /** Compactor tuning (core/config/compactor.ts; defaults in compactor/config.ts DEFAULT_CONFIG). */
  COMPACTOR_WORK_DIR: 'COMPACTOR_WORK_DIR',
  COMPACTOR_BATCH_SIZE: 'COMPACTOR_BATCH_SIZE',
  COMPACTOR_BATCH_WINDOW_MS: 'COMPACTOR_BATCH_WINDOW_MS',
  COMPACTOR_PUBLISH_HOLD_MS: 'COMPACTOR_PUBLISH_HOLD_MS',
  COMPACTOR_WAIT_SECONDS: 'COMPACTOR_WAIT_SECONDS',
  COMPACTOR_VISIBILITY_SECONDS: 'COMPACTOR_VISIBILITY_SECONDS',
  COMPACTOR_MAX_RECEIVES: 'COMPACTOR_MAX_RECEIVES',
  COMPACTOR_KEEP_VERSIONS: 'COMPACTOR_KEEP_VERSIONS',
  COMPACTOR_GRACE_SECONDS: 'COMPACTOR_GRACE_SECONDS',
  COMPACTOR_SEAL_VECTORS: 'COMPACTOR_SEAL_VECTORS',
  COMPACTOR_MERGE_RATIO: 'COMPACTOR_MERGE_RATIO',
  COMPACTOR_S3_EVERY_PUBLISHES: 'COMPACTOR_S3_EVERY_PUBLISHES',
  COMPACTOR_S3_EVERY_SECONDS: 'COMPACTOR_S3_EVERY_SECONDS',
  COMPACTOR_S3_KEEP: 'COMPACTOR_S3_KEEP',
  COMPACTOR_EXIT_WHEN_IDLE_MS: 'COMPACTOR_EXIT_WHEN_IDLE_MS',
  COMPACTOR_MAX_GROUP_BYTES: 'COMPACTOR_MAX_GROUP_BYTES',
  COMPACTOR_STALL_SECONDS: 'COMPACTOR_STALL_SECONDS',
  COMPACTOR_CRASH_LIMIT: 'COMPACTOR_CRASH_LIMIT',
  COMPACTOR_CHROMA_TIMEOUT_SECONDS: 'COMPACTOR_CHROMA_TIMEOUT_SECONDS',
  /** Limits on the original system's tar.gz / per-file Chroma deltas (compactor/README.md "Mixed fleet"). */
  COMPACTOR_CHROMA_DELTA_MAX_ARCHIVE_BYTES: 'COMPACTOR_CHROMA_DELTA_MAX_ARCHIVE_BYTES',
  COMPACTOR_CHROMA_DELTA_MAX_BYTES: 'COMPACTOR_CHROMA_DELTA_MAX_BYTES',
  COMPACTOR_CHROMA_DELTA_MAX_MEMBERS: 'COMPACTOR_CHROMA_DELTA_MAX_MEMBERS',

  /** Stream processor (core/config/stream.ts): `off` disables it in the controller. */
  STREAM_PROCESSOR: 'STREAM_PROCESSOR',
  /** Stream checkpoints in this file instead of the ConfigMap (local mode, tests). */
  STREAM_CHECKPOINT_FILE: 'STREAM_CHECKPOINT_FILE',
  /** Name of the checkpoint ConfigMap (default STREAM_CHECKPOINT_CONFIGMAP). */
  STREAM_CHECKPOINT_CONFIGMAP: 'STREAM_CHECKPOINT_CONFIGMAP',
  /** Pending-run sweeper (stream/sweeper.ts): interval (0 = off), minimum run age, runs per sweep. */
  STREAM_SWEEP_INTERVAL_MS: 'STREAM_SWEEP_INTERVAL_MS',
  STREAM_SWEEP_AFTER_MS: 'STREAM_SWEEP_AFTER_MS',
  STREAM_SWEEP_LIMIT: 'STREAM_SWEEP_LIMIT',
  /** Standalone stream processor (stream/main.ts): `1` records no job results. */
  STREAM_NO_SINK: 'STREAM_NO_SINK',

  /** `npm run synth` (cdk8s/main.ts): the environment to synthesize when --env is not given. */
  EMBEDCTL_ENV: 'EMBEDCTL_ENV',
  /** Local mode's home directory (default `.local`). */
  EMBEDCTL_HOME: 'EMBEDCTL_HOME',
  /** Local mode's embedder when `--embedder` is not given: sentence, lexical or openai (local/embedder.ts). */
  EMBEDCTL_EMBEDDER: 'EMBEDCTL_EMBEDDER',
  /** Local mode: where tools/model/install-minilm.sh puts the sentence model (default ~/.cache/embedctl/models). */
  EMBEDCTL_MODELS: 'EMBEDCTL_MODELS',
  /** Local mode: `1` starts children with tsx from the sources instead of the bundle. */
  EMBEDCTL_CHILD_TSX: 'EMBEDCTL_CHILD_TSX',
  /** Local mode: set on children whose stdin is the parent's lifeline pipe (core/local/launcher.ts). */
  EMBEDCTL_PARENT_PIPE: 'EMBEDCTL_PARENT_PIPE',
  /**
   * Fault injection for the crash-matrix tests (core/testing/crash-points.ts), read only at the program edge: SIGKILL
   * at step EMBEDCTL_CRASH_AT after skipping EMBEDCTL_CRASH_AFTER hits; every time run EMBEDCTL_CRASH_ON_RUN loads.
   */
  EMBEDCTL_CRASH_AT: 'EMBEDCTL_CRASH_AT',
  EMBEDCTL_CRASH_AFTER: 'EMBEDCTL_CRASH_AFTER',
  EMBEDCTL_CRASH_ON_RUN: 'EMBEDCTL_CRASH_ON_RUN',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Secret (name and key) that OPENAI_API_KEY comes from. The secret is created by the operator, not the charts. */
export const OPENAI_SECRET = { name: 'openai', key: 'api-key' } as const;

/**
 * Leases the charts create (empty) in the namespace, so that the Roles can name them: the programs only get/update
 * them and never need `create`. LEASE_NAME carries the right one into each Deployment.
 */
export const LEASE_NAMES = { controller: 'embedctl-controller', compactor: 'embedctl-compactor' } as const;

/** ConfigMap where the controller's stream processor checkpoints each DynamoDB Streams shard. */
export const STREAM_CHECKPOINT_CONFIGMAP = 'embedctl-stream-checkpoint';

/** Mount path of the shared Chroma volume in every pod that mounts it. */
export const CHROMA_MOUNT_PATH = '/mnt/chroma';

/** Default metrics/health port. */
export const DEFAULT_METRICS_PORT = 9090;

/**
 * Keys of the worker-settings ConfigMap (`WORKER_CONFIGMAP`) that the controller reads to build worker Jobs.
 * Values are strings (ConfigMap data); numbers are decimal strings, `resources` is JSON of a core/v1
 * ResourceRequirements, `podSecurityContext`/`containerSecurityContext` are JSON of the matching core/v1 types.
 */
export const WORKER_CONFIG_KEYS = {
  image: 'image',
  imagePullPolicy: 'imagePullPolicy',
  serviceAccountName: 'serviceAccountName',
  resources: 'resources',
  activeDeadlineSeconds: 'activeDeadlineSeconds',
  backoffLimit: 'backoffLimit',
  ttlSecondsAfterFinished: 'ttlSecondsAfterFinished',
  pvcName: 'pvcName',
  chromaMountPath: 'chromaMountPath',
  batchSize: 'batchSize',
  batchWindowSeconds: 'batchWindowSeconds',
  maxActivePods: 'maxActivePods',
  podSecurityContext: 'podSecurityContext',
  containerSecurityContext: 'containerSecurityContext',
  /** JSON array of core/v1 EnvVar the controller copies into every worker container. */
  env: 'env',
  /** Size limit (a quantity) of the worker's /tmp emptyDir. */
  scratchSize: 'scratchSize',
} as const;

export const ENV_VARS: readonly EnvVarSpec[] = [
  {
    name: ENV.EMBED_QUEUE_URL,
    description: 'SQS URL of the EMBED queue',
    usedBy: ['controller'],
    required: true,
  },
  {
    name: ENV.EMBED_DLQ_URL,
    description: 'SQS URL of the EMBED dead-letter queue',
    usedBy: ['controller'],
    required: true,
  },
  {
    name: ENV.LINES_QUEUE_URL,
    description: 'SQS URL of the LINES compaction queue',
    usedBy: ['controller', 'compactor'],
    required: true,
  },
  {
    name: ENV.WORDS_QUEUE_URL,
    description: 'SQS URL of the WORDS compaction queue',
    usedBy: ['controller', 'compactor'],
    required: true,
  },
  {
    name: ENV.COMPACTION_DLQ_URL,
    description: 'SQS URL of the compaction dead-letter queue',
    usedBy: ['controller', 'compactor'],
    required: true,
  },
  {
    name: ENV.ARTIFACTS_BUCKET,
    description: 'S3 bucket of NDJSON artifacts',
    usedBy: ['controller', 'worker'],
    required: true,
  },
  {
    name: ENV.ARTIFACTS_BUCKETS_ALLOWED,
    description: 'comma-separated further buckets EMBED messages may name (default: only ARTIFACTS_BUCKET)',
    usedBy: ['controller', 'worker'],
    required: false,
  },
  {
    name: ENV.VECTORS_BUCKET,
    description: 'S3 bucket of deltas and snapshots',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
  },
  {
    name: ENV.LEDGER_TABLE,
    description: 'DynamoDB table name',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
  },
  {
    name: ENV.LEDGER_STREAM_ARN,
    description: 'DynamoDB Streams ARN',
    usedBy: ['controller'],
    required: false,
  },
  {
    name: ENV.AWS_REGION,
    description: 'AWS region',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
  },
  {
    name: ENV.AWS_ENDPOINT_URL,
    description: 'AWS endpoint override (local emulators only)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
  },
  {
    name: ENV.CHROMA_ROOT,
    description: 'root of the shared Chroma volume',
    usedBy: ['worker', 'compactor'],
    required: true,
    default: CHROMA_MOUNT_PATH,
  },
  {
    name: ENV.VECTOR_STORE,
    description: 'vector store mode: volume (default) or remote (a Chroma server at CHROMA_URL)',
    usedBy: ['worker', 'compactor'],
    required: false,
    default: 'volume',
  },
  {
    name: ENV.CHROMA_URL,
    description: 'remote mode: base URL of the Chroma server',
    usedBy: ['worker', 'compactor'],
    required: false,
  },
  {
    name: ENV.CHROMA_TENANT,
    description: 'remote mode: Chroma tenant',
    usedBy: ['worker', 'compactor'],
    required: false,
    default: 'default_tenant',
  },
  {
    name: ENV.CHROMA_DATABASE,
    description: 'remote mode: Chroma database',
    usedBy: ['worker', 'compactor'],
    required: false,
    default: 'default_database',
  },
  {
    name: ENV.NAMESPACE,
    description: 'own namespace (downward API)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
  },
  {
    name: ENV.POD_NAME,
    description: 'own pod name (downward API), Lease identity',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
  },
  {
    name: ENV.WORKER_JOB_NAME,
    description: 'own worker Job (set by the controller, not the charts)',
    usedBy: ['worker'],
    required: false,
  },
  {
    name: ENV.WORKER_CONFIGMAP,
    description: 'ConfigMap of worker Job settings',
    usedBy: ['controller'],
    required: true,
    default: 'embedctl-worker',
  },
  {
    name: ENV.METRICS_PORT,
    description: 'port of /metrics, /healthz, /readyz',
    usedBy: ['controller', 'worker', 'compactor'],
    required: true,
    default: String(DEFAULT_METRICS_PORT),
  },
  {
    name: ENV.OPENAI_API_KEY,
    description: `embedding API key, from Secret ${OPENAI_SECRET.name} key ${OPENAI_SECRET.key} (optional ref)`,
    usedBy: ['worker'],
    required: false,
  },
  {
    name: ENV.OPENAI_BASE_URL,
    description: 'OpenAI-compatible base URL',
    usedBy: ['worker'],
    required: false,
  },
  {
    name: ENV.EMBEDDING_MODEL,
    description: 'embedding model',
    usedBy: ['worker', 'controller'],
    required: true,
    default: 'text-embedding-3-small',
  },
  {
    name: ENV.EMBEDDING_DIMENSIONS,
    description: 'embedding dimension',
    usedBy: ['worker', 'compactor'],
    required: true,
    default: '1536',
  },
  {
    name: ENV.COMPACTOR_SEAL_VECTORS,
    description: 'least vectors in the hot segment before it is sealed (docs/adr/0012-immutable-segments.md)',
    usedBy: ['compactor'],
    required: false,
    default: '8000',
  },
  {
    name: ENV.COMPACTOR_MERGE_RATIO,
    description:
      'merge policy: seal at this fraction of the largest sealed segment, then merge into it (compactor/merge-policy.ts)',
    usedBy: ['compactor'],
    required: false,
    default: '0.05',
  },
  {
    name: ENV.LEASE_NAME,
    description: 'Lease held by this program (created empty by the charts)',
    usedBy: ['controller', 'compactor'],
    required: true,
  },
  {
    name: ENV.AWS_ACCESS_KEY_ID,
    description: 'emulator credentials (kind only, optional Secret ref)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
  },
  {
    name: ENV.AWS_SECRET_ACCESS_KEY,
    description: 'emulator credentials (kind only, optional Secret ref)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
  },
  {
    name: ENV.LOG_LEVEL,
    description: 'pino log level',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
    default: 'info',
  },
  {
    name: ENV.KUBERNETES_SERVICE_HOST,
    description:
      'apiserver address for in-cluster clients (set by the kubelet; by the charts only on the node environment)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
  },
  {
    name: ENV.KUBERNETES_SERVICE_PORT,
    description: 'apiserver port for in-cluster clients (as KUBERNETES_SERVICE_HOST)',
    usedBy: ['controller', 'worker', 'compactor'],
    required: false,
  },
];

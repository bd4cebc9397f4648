import { hostname } from 'node:os';
import { z } from 'zod';
import {
  CHROMA_MOUNT_PATH,
  DEFAULT_METRICS_PORT,
  ENV,
  LEASE_NAMES,
  WORKER_CONFIG_KEYS,
  type Env,
} from '../core/config/env.js';
import { allowedBuckets, BucketName } from '../core/contracts/artifact-location.js';
import { parseWithNames, stripUndefined } from '../core/config/parse.js';
import {
  assertWorkerPolicy,
  DEFAULT_WORKER_SECRETS,
  WORKER_SERVICE_ACCOUNT,
  type WorkerPolicy,
} from './worker-policy.js';

/**
 * Controller configuration, parsed once at the edge (env + flags + the worker ConfigMap) into typed objects with
 * documented defaults. Errors name the variable and the bad value.
 */

const int = (min: number) => z.coerce.number().int().min(min);
/** A value given either as JSON text (ConfigMap data) or already parsed. */
const json = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v, ctx) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `must be JSON: ${err instanceof Error ? err.message : String(err)}`,
      });
      return z.NEVER;
    }
  }, schema);
const jsonObject = json(z.record(z.string(), z.unknown()));

/** How worker Jobs are built (from the WORKER_CONFIGMAP ConfigMap; keys in `WORKER_CONFIG_KEYS`). */
export const WorkerSettings = z.object({
  /** @default - required: the embedctl image */
  image: z.string().min(1),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  /** Must equal WORKER_SERVICE_ACCOUNT when read from the ConfigMap (controller/worker-policy.ts). */
  serviceAccountName: z.string().min(1).default(WORKER_SERVICE_ACCOUNT),
  /** core/v1 ResourceRequirements */
  resources: jsonObject.default({
    requests: { cpu: '500m', memory: '1Gi' },
    limits: { memory: '2Gi' },
  }),
  activeDeadlineSeconds: int(1).default(1800),
  /** Pod retries inside one Job. Retries are per EmbeddingJob by the controller, so 0. */
  backoffLimit: int(0).default(0),
  ttlSecondsAfterFinished: int(0).default(600),
  /** PVC of the shared Chroma volume; mounted read-only. Unset: no volume (tests). */
  pvcName: z.string().min(1).optional(),
  chromaMountPath: z.string().min(1).default(CHROMA_MOUNT_PATH),
  /** Size limit of the /tmp emptyDir (a quantity, e.g. `10Gi`). Unset: no limit. */
  scratchSize: z.string().min(1).optional(),
  podSecurityContext: jsonObject.optional(),
  containerSecurityContext: jsonObject.optional(),
  /** JSON array of core/v1 EnvVar added to the worker container. */
  env: json(z.array(z.record(z.string(), z.unknown()))).default([]),
});
export type WorkerSettings = z.output<typeof WorkerSettings>;
export type WorkerSettingsInput = z.input<typeof WorkerSettings>;

export const DispatchSettings = z.object({
  /** EmbeddingJobs per worker Job. */
  batchSize: int(1).max(100).default(10),
  /** How long a partial batch waits for more members (like Lambda's batching window). */
  batchWindowSeconds: z.coerce.number().min(0).default(2),
  /** Unfinished worker Jobs (each one pod, Pending pods included) that have not yet reported every member. */
  maxActivePods: int(1).default(20),
  /** Retried items go in a batch of their own. */
  isolateRetries: z.boolean().default(true),
});
export type DispatchSettings = z.output<typeof DispatchSettings>;

export const StatusSettings = z.object({
  maxAttempts: int(1).default(3),
  retryBaseSeconds: z.coerce.number().min(0).default(10),
  retryMaxSeconds: z.coerce.number().min(0).default(300),
  /** Finished EmbeddingJobs are deleted this long after completionTime. */
  finishedTtlSeconds: int(0).default(86_400),
  /** A worker Job without pods for this long is checked for FailedCreate (admission) events. */
  podRejectedGraceSeconds: z.coerce.number().min(0).default(10),
  /** A worker pod that cannot get its image for this long: its Job is deleted and the item retried. */
  imagePullGraceSeconds: z.coerce.number().min(0).default(60),
  concurrency: int(1).default(8),
  /** Every EmbeddingJob is reconciled at least this often (safety net against missed events). */
  resyncSeconds: z.coerce.number().min(1).default(600),
});
export type StatusSettings = z.output<typeof StatusSettings>;

export const IngestSettings = z.object({
  pollers: int(1).max(64).default(4),
  waitSeconds: int(0).max(20).default(20),
  /** Visibility timeout of received messages: how soon a message whose CR was not stored comes back. */
  visibilitySeconds: int(1).default(60),
  /** Stop receiving while this many EmbeddingJobs are not finished. */
  maxOutstanding: int(1).default(2000),
});
export type IngestSettings = z.output<typeof IngestSettings>;

export const LeaderSettings = z.object({
  enabled: z.boolean().default(true),
  leaseName: z.string().min(1).default(LEASE_NAMES.controller),
  leaseDurationSeconds: z.coerce.number().positive().default(15),
  renewDeadlineSeconds: z.coerce.number().positive().default(10),
  retryPeriodSeconds: z.coerce.number().positive().default(2),
});

export const ControllerConfig = z.object({
  namespace: z.string().min(1),
  identity: z.string().min(1),
  embedQueueUrl: z.string().url(),
  embedDlqUrl: z.string().url(),
  aws: z.object({ region: z.string().min(1), endpoint: z.string().url().optional() }),
  metricsPort: int(0).max(65535).default(DEFAULT_METRICS_PORT),
  workerConfigMap: z.string().min(1).default('embedctl-worker'),
  /** Buckets an EMBED message may name (ARTIFACTS_BUCKET plus ARTIFACTS_BUCKETS_ALLOWED); others are dead-lettered. */
  artifactBuckets: z.array(BucketName).min(1),
  kubeconfig: z.string().optional(),
  /** What worker Jobs may be whatever the worker ConfigMap says (--allowed-images, --worker-secrets). */
  workerPolicy: z
    .object({
      allowedImages: z.array(z.string().min(1)).default([]),
      allowedSecrets: z.array(z.string().min(1)).default([...DEFAULT_WORKER_SECRETS]),
    })
    .default({ allowedImages: [], allowedSecrets: [...DEFAULT_WORKER_SECRETS] }),
  ingest: IngestSettings.default(IngestSettings.parse({})),
  dispatch: DispatchSettings.default(DispatchSettings.parse({})),
  status: StatusSettings.default(StatusSettings.parse({})),
  leader: LeaderSettings.default(LeaderSettings.parse({})),
});
export type ControllerConfig = z.output<typeof ControllerConfig>;

/** Flags of `embedctl controller` (commander camel-cases them). */
export interface ControllerFlags {
  kubeconfig?: string;
  leaderElect?: boolean;
  pollers?: string;
  maxOutstanding?: string;
  maxAttempts?: string;
  finishedTtl?: string;
  imagePullGrace?: string;
  /** Comma-separated image prefixes worker Jobs may use (controller/worker-policy.ts). */
  allowedImages?: string;
  /** Comma-separated Secrets the worker's env may reference (default: the OpenAI key's). */
  workerSecrets?: string;
}

/** Env names of every field, for error messages. */
const SOURCES: Record<string, string> = {
  namespace: ENV.NAMESPACE,
  identity: ENV.POD_NAME,
  embedQueueUrl: ENV.EMBED_QUEUE_URL,
  embedDlqUrl: ENV.EMBED_DLQ_URL,
  'aws.region': ENV.AWS_REGION,
  'aws.endpoint': ENV.AWS_ENDPOINT_URL,
  metricsPort: ENV.METRICS_PORT,
  workerConfigMap: ENV.WORKER_CONFIGMAP,
  artifactBuckets: `${ENV.ARTIFACTS_BUCKET} / ${ENV.ARTIFACTS_BUCKETS_ALLOWED}`,
  'ingest.pollers': '--pollers',
  'ingest.maxOutstanding': '--max-outstanding',
  'status.maxAttempts': '--max-attempts',
  'status.finishedTtlSeconds': '--finished-ttl',
  'status.imagePullGraceSeconds': '--image-pull-grace',
  'workerPolicy.allowedImages': '--allowed-images',
  'workerPolicy.allowedSecrets': '--worker-secrets',
};

export function parseControllerConfig(env: Env, flags: ControllerFlags = {}): ControllerConfig {
  const raw = {
    namespace: env[ENV.NAMESPACE],
    identity: env[ENV.POD_NAME] || `${hostname()}-${process.pid}`,
    embedQueueUrl: env[ENV.EMBED_QUEUE_URL],
    embedDlqUrl: env[ENV.EMBED_DLQ_URL],
    aws: {
      region: env[ENV.AWS_REGION] ?? env[ENV.AWS_DEFAULT_REGION],
      endpoint: env[ENV.AWS_ENDPOINT_URL] || undefined,
    },
    metricsPort: env[ENV.METRICS_PORT],
    workerConfigMap: env[ENV.WORKER_CONFIGMAP],
    artifactBuckets: allowedBuckets(env[ENV.ARTIFACTS_BUCKET], env[ENV.ARTIFACTS_BUCKETS_ALLOWED]),
    kubeconfig: flags.kubeconfig,
    workerPolicy: { allowedImages: list(flags.allowedImages), allowedSecrets: list(flags.workerSecrets) },
    ingest: { pollers: flags.pollers, maxOutstanding: flags.maxOutstanding },
    status: {
      maxAttempts: flags.maxAttempts,
      finishedTtlSeconds: flags.finishedTtl,
      imagePullGraceSeconds: flags.imagePullGrace,
    },
    leader: { enabled: flags.leaderElect ?? true },
  };
  return parseWithNames(
    ControllerConfig,
    stripUndefined(raw),
    (path) => SOURCES[path] ?? SOURCES[path.split('.')[0]!] ?? path,
    'controller configuration',
  );
}

const list = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);

/** The policy worker Jobs are held to: the fixed ServiceAccount and the operator's allowlists. */
export function workerPolicyOf(config: ControllerConfig): WorkerPolicy {
  return { serviceAccountName: WORKER_SERVICE_ACCOUNT, ...config.workerPolicy };
}

/**
 * Worker settings and dispatch overrides from the ConfigMap's string data. With a policy, settings it refuses throw
 * WorkerConfigRefused (each problem names the key).
 */
export function parseWorkerConfigMap(
  data: Record<string, string>,
  dispatchDefaults: DispatchSettings,
  policy?: WorkerPolicy & { configMap: string },
): { worker: WorkerSettings; dispatch: DispatchSettings } {
  const K = WORKER_CONFIG_KEYS;
  const worker = parseWithNames(
    WorkerSettings,
    stripUndefined(Object.fromEntries(Object.values(K).map((k) => [k, data[k]]))),
    (path) => `ConfigMap key ${path.split('.')[0]}`,
    'worker ConfigMap',
  );
  if (policy) assertWorkerPolicy(policy.configMap, worker, policy);
  const dispatch = parseWithNames(
    DispatchSettings,
    stripUndefined({
      ...dispatchDefaults,
      batchSize: data[K.batchSize] ?? dispatchDefaults.batchSize,
      batchWindowSeconds: data[K.batchWindowSeconds] ?? dispatchDefaults.batchWindowSeconds,
      maxActivePods: data[K.maxActivePods] ?? dispatchDefaults.maxActivePods,
    }),
    (path) => `ConfigMap key ${path}`,
    'worker ConfigMap',
  );
  return { worker, dispatch };
}

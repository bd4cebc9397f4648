/**
 * Names, labels, security contexts and environment shared by every chart.
 */
import type { ApiObject } from 'cdk8s';
import { JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { APP_NAME, LABEL, MANAGED_BY } from '../core/contracts/labels.js';
import { RUN_AS_GID, RUN_AS_UID } from '../core/contracts/pod-security.js';
import type { EnvironmentConfig, Resources } from './config.js';
import type { Program } from '../core/config/env.js';
import {
  CHROMA_MOUNT_PATH,
  ENV,
  LEASE_NAMES,
  OPENAI_SECRET,
  STREAM_CHECKPOINT_CONFIGMAP,
} from '../core/config/env.js';

/** Object names (namespaced objects live in `cfg.namespace`). */
export const NAMES = {
  controller: 'embedctl-controller',
  compactor: 'embedctl-compactor',
  worker: 'embedctl-worker',
  workerConfigMap: 'embedctl-worker',
  pvc: 'embedctl-chroma',
  triggerAuth: 'embedctl-compactor-aws',
  leases: LEASE_NAMES,
  streamCheckpoint: STREAM_CHECKPOINT_CONFIGMAP,
} as const;

/** Cluster-scoped names carry the namespace so that two installs do not collide. */
export const clusterName = (cfg: EnvironmentConfig, suffix: string): string => `${cfg.namespace}-${suffix}`;

export function labels(cfg: EnvironmentConfig, component?: Program | string): Record<string, string> {
  return {
    [LABEL.name]: APP_NAME,
    [LABEL.instance]: cfg.name,
    [LABEL.partOf]: APP_NAME,
    [LABEL.managedBy]: MANAGED_BY.charts,
    ...(component ? { [LABEL.component]: component } : {}),
  };
}

/** The labels pods are selected by (stable across upgrades: never add to these). */
export function selectorLabels(cfg: EnvironmentConfig, component: Program): Record<string, string> {
  return {
    [LABEL.name]: APP_NAME,
    [LABEL.instance]: cfg.name,
    [LABEL.component]: component,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Security: Pod Security Standards "restricted" (non-root, RuntimeDefault seccomp, drop ALL, no escalation).

/** core/contracts/pod-security.ts as cdk8s-plus-27 props (which lack seccompProfile: see {@link applyRestrictedPatches}). */
export const PLUS_POD_SECURITY: kplus.PodSecurityContextProps = {
  ensureNonRoot: true,
  user: RUN_AS_UID,
  group: RUN_AS_GID,
  fsGroup: RUN_AS_GID,
  fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
};
export const PLUS_CONTAINER_SECURITY: kplus.ContainerSecurityContextProps = {
  ensureNonRoot: true,
  user: RUN_AS_UID,
  group: RUN_AS_GID,
  privileged: false,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
};

/**
 * Escape hatches for what cdk8s-plus-27 cannot express: it has no `seccompProfile` (added upstream after the 27
 * line froze) and its `Capability` enum has no `ALL`. Patch both into the pod template's and every container's
 * security context.
 */
export function applyRestrictedPatches(
  apiObject: ApiObject,
  podSpecPath: string,
  containerCount: number,
): void {
  apiObject.addJsonPatch(
    JsonPatch.add(`${podSpecPath}/securityContext/seccompProfile`, { type: 'RuntimeDefault' }),
  );
  for (let i = 0; i < containerCount; i++) {
    const sc = `${podSpecPath}/containers/${i}/securityContext`;
    apiObject.addJsonPatch(JsonPatch.add(`${sc}/seccompProfile`, { type: 'RuntimeDefault' }));
    apiObject.addJsonPatch(JsonPatch.add(`${sc}/capabilities`, { drop: ['ALL'] }));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Resources.

function cpu(q: string): kplus.Cpu {
  return q.endsWith('m') ? kplus.Cpu.millis(Number(q.slice(0, -1))) : kplus.Cpu.units(Number(q));
}

function size(q: string): Size {
  const m = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(q);
  if (!m) throw new Error(`bad quantity ${q}`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'Ki':
      return Size.kibibytes(n);
    case 'Mi':
      return Size.mebibytes(n);
    case 'Gi':
      return Size.gibibytes(n);
    default:
      return Size.tebibytes(n);
  }
}

export { size as quantityToSize };

export function plusResources(r: Resources): kplus.ContainerResources {
  return {
    cpu: { request: cpu(r.cpuRequest), limit: cpu(r.cpuLimit) },
    memory: { request: size(r.memoryRequest), limit: size(r.memoryLimit) },
    ...(r.ephemeralStorage
      ? { ephemeralStorage: { request: size(r.ephemeralStorage), limit: size(r.ephemeralStorage) } }
      : {}),
  };
}

/** core/v1 ResourceRequirements JSON (for the worker template in the ConfigMap). */
export function resourceRequirements(r: Resources): {
  requests: Record<string, string>;
  limits: Record<string, string>;
} {
  const eph: Record<string, string> = r.ephemeralStorage ? { 'ephemeral-storage': r.ephemeralStorage } : {};
  return {
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest, ...eph },
    limits: { cpu: r.cpuLimit, memory: r.memoryLimit, ...eph },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Environment.

/** core/v1 EnvVar JSON. */
export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { fieldRef: { fieldPath: string } } }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string; optional: boolean } } };

/** The environment of one program, as core/v1 EnvVar JSON, in a fixed order (see core/config/env.ts for meanings). */
export function programEnv(cfg: EnvironmentConfig, program: Program): EnvVar[] {
  const v = (name: string, value: string): EnvVar => ({ name, value });
  const field = (name: string, fieldPath: string): EnvVar => ({
    name,
    valueFrom: { fieldRef: { fieldPath } },
  });
  const secret = (name: string, secretName: string, key: string): EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: secretName, key, optional: true } },
  });
  const out: EnvVar[] = [
    field(ENV.NAMESPACE, 'metadata.namespace'),
    field(ENV.POD_NAME, 'metadata.name'),
    v(ENV.AWS_REGION, cfg.aws.region),
  ];
  if (cfg.aws.endpoint) out.push(v(ENV.AWS_ENDPOINT_URL, cfg.aws.endpoint));
  if (cfg.aws.staticCredentialsSecret) {
    out.push(secret(ENV.AWS_ACCESS_KEY_ID, cfg.aws.staticCredentialsSecret, ENV.AWS_ACCESS_KEY_ID));
    out.push(secret(ENV.AWS_SECRET_ACCESS_KEY, cfg.aws.staticCredentialsSecret, ENV.AWS_SECRET_ACCESS_KEY));
  }
  if (cfg.kubernetesApi) {
    out.push(
      v(ENV.KUBERNETES_SERVICE_HOST, cfg.kubernetesApi.host),
      v(ENV.KUBERNETES_SERVICE_PORT, String(cfg.kubernetesApi.port)),
    );
  }
  out.push(v(ENV.METRICS_PORT, String(cfg.metricsPort)), v(ENV.LOG_LEVEL, cfg.logLevel));
  const q = cfg.queues;
  const allowed = cfg.buckets.allowedArtifacts.join(',');
  const st = cfg.storage;
  // Where the vectors are, for the compactor and the worker: the mounted volume, or the remote server.
  const vectorStore =
    st.mode === 'remote'
      ? [
          v(ENV.VECTOR_STORE, 'remote'),
          v(ENV.CHROMA_URL, st.url),
          v(ENV.CHROMA_TENANT, st.tenant),
          v(ENV.CHROMA_DATABASE, st.database),
        ]
      : [v(ENV.CHROMA_ROOT, CHROMA_MOUNT_PATH)];
  if (program === 'controller') {
    out.push(
      v(ENV.EMBED_QUEUE_URL, q.embed),
      v(ENV.EMBED_DLQ_URL, q.embedDlq),
      v(ENV.LINES_QUEUE_URL, q.lines),
      v(ENV.WORDS_QUEUE_URL, q.words),
      v(ENV.COMPACTION_DLQ_URL, q.compactionDlq),
      v(ENV.ARTIFACTS_BUCKET, cfg.buckets.artifacts),
      v(ENV.VECTORS_BUCKET, cfg.buckets.vectors),
      v(ENV.LEDGER_TABLE, cfg.ledger.table),
    );
    if (allowed) out.push(v(ENV.ARTIFACTS_BUCKETS_ALLOWED, allowed));
    if (cfg.ledger.streamArn) out.push(v(ENV.LEDGER_STREAM_ARN, cfg.ledger.streamArn));
    out.push(
      v(ENV.WORKER_CONFIGMAP, NAMES.workerConfigMap),
      v(ENV.LEASE_NAME, NAMES.leases.controller),
      v(ENV.EMBEDDING_MODEL, cfg.embedding.model),
    );
  } else if (program === 'compactor') {
    out.push(
      v(ENV.LINES_QUEUE_URL, q.lines),
      v(ENV.WORDS_QUEUE_URL, q.words),
      v(ENV.COMPACTION_DLQ_URL, q.compactionDlq),
      v(ENV.VECTORS_BUCKET, cfg.buckets.vectors),
      v(ENV.LEDGER_TABLE, cfg.ledger.table),
      ...vectorStore,
      v(ENV.LEASE_NAME, NAMES.leases.compactor),
      v(ENV.EMBEDDING_DIMENSIONS, String(cfg.embedding.dimensions)),
    );
    if (st.mode !== 'remote') {
      const seg = cfg.compactor.segments;
      out.push(
        v(ENV.COMPACTOR_SEAL_VECTORS, String(seg.sealVectors)),
        v(ENV.COMPACTOR_MERGE_RATIO, String(seg.mergeRatio)),
      );
    }
  } else {
    if (allowed) out.push(v(ENV.ARTIFACTS_BUCKETS_ALLOWED, allowed));
    out.push(
      v(ENV.ARTIFACTS_BUCKET, cfg.buckets.artifacts),
      v(ENV.VECTORS_BUCKET, cfg.buckets.vectors),
      v(ENV.LEDGER_TABLE, cfg.ledger.table),
      ...vectorStore,
      v(ENV.EMBEDDING_MODEL, cfg.embedding.model),
      v(ENV.EMBEDDING_DIMENSIONS, String(cfg.embedding.dimensions)),
    );
    if (cfg.embedding.baseUrl) out.push(v(ENV.OPENAI_BASE_URL, cfg.embedding.baseUrl));
    out.push(secret(ENV.OPENAI_API_KEY, OPENAI_SECRET.name, OPENAI_SECRET.key));
  }
  return out;
}

/** The same environment as cdk8s-plus-27 `envVariables`. */
export function plusEnv(
  scope: Construct,
  cfg: EnvironmentConfig,
  program: Program,
): Record<string, kplus.EnvValue> {
  const out: Record<string, kplus.EnvValue> = {};
  for (const e of programEnv(cfg, program)) {
    if ('value' in e) out[e.name] = kplus.EnvValue.fromValue(e.value);
    else if ('fieldRef' in e.valueFrom) {
      const path =
        e.valueFrom.fieldRef.fieldPath === 'metadata.namespace'
          ? kplus.EnvFieldPaths.POD_NAMESPACE
          : kplus.EnvFieldPaths.POD_NAME;
      out[e.name] = kplus.EnvValue.fromFieldRef(path);
    } else {
      const ref = e.valueFrom.secretKeyRef;
      out[e.name] = kplus.EnvValue.fromSecretValue(
        {
          secret: kplus.Secret.fromSecretName(scope, `secret-${ref.name}-${ref.key}`, ref.name),
          key: ref.key,
        },
        { optional: ref.optional },
      );
    }
  }
  return out;
}

/** IRSA annotation for a service account, when identity is IRSA and a role is configured. */
export function irsaAnnotations(cfg: EnvironmentConfig, roleArn: string | undefined): Record<string, string> {
  if (cfg.identity !== 'irsa' || !roleArn) return {};
  return {
    'eks.amazonaws.com/role-arn': roleArn,
    'eks.amazonaws.com/sts-regional-endpoints': 'true',
  };
}

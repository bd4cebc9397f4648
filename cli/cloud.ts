import { parseSubmitCloudEnv } from '../core/config/cloud-commands.js';
import { ENV, LEASE_NAMES, processEnv } from '../core/config/env.js';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { S3Store } from '../core/aws/s3-store.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { makeKubeClient } from '../core/kube/client.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { KubeLeaseBackend } from '../core/lease/kube-lease.js';
import type { ObjectStore } from '../core/ports/object-store.js';

/**
 * What `--cloud` talks to, built from the same environment variables as the deployed programs (core/config/env.ts): SQS +
 * S3 for submit, the EmbeddingJobs and the compactor's Lease in a namespace, the shared volume (CHROMA_ROOT) and its
 * S3 mirror (VECTORS_BUCKET).
 */

/** --namespace, else $NAMESPACE, else "default". */
export function cloudNamespace(namespace: string | undefined): string {
  return namespace ?? processEnv()[ENV.NAMESPACE] ?? 'default';
}

/** The EMBED queue and the artifacts bucket (--bucket, else $ARTIFACTS_BUCKET) that `submit --cloud` sends to. */
export function cloudSubmitTarget(bucket: string | undefined) {
  const env = processEnv();
  const cloud = parseSubmitCloudEnv(env, bucket);
  const settings = awsSettingsFromEnv(env);
  return {
    bucket: cloud.bucket,
    store: new S3Store(settings),
    queue: new SqsQueue(cloud.queueUrl, settings, cloud.dlqUrl),
  };
}

export async function cloudJobClient(kubeconfig: string | undefined): Promise<EmbeddingJobClient> {
  return new EmbeddingJobClient(await makeKubeClient(kubeconfig ? { kubeconfig } : {}));
}

/** The snapshot volume (--chroma-root, else $CHROMA_ROOT) and the S3 mirror ($VECTORS_BUCKET), where set. */
export function cloudVolume(chromaRoot: string | undefined): {
  root?: string;
  mirror?: { store: ObjectStore; bucket: string };
} {
  const env = processEnv();
  const root = chromaRoot ?? env[ENV.CHROMA_ROOT];
  const bucket = env[ENV.VECTORS_BUCKET];
  return {
    ...(root ? { root } : {}),
    ...(bucket ? { mirror: { store: new S3Store(awsSettingsFromEnv()), bucket } } : {}),
  };
}

/**
 * The coordination.k8s.io Lease the compactor Deployment holds (--lease-name, default embedctl-compactor, in
 * --namespace). $LEASE_NAME is not read: in a controller pod it names the controller's Lease.
 */
export async function compactorLease(f: {
  namespace?: string;
  leaseName?: string;
  kubeconfig?: string;
}): Promise<KubeLeaseBackend> {
  return new KubeLeaseBackend(
    makeKubeClient(f.kubeconfig ? { kubeconfig: f.kubeconfig } : {}),
    cloudNamespace(f.namespace),
    f.leaseName ?? LEASE_NAMES.compactor,
  );
}

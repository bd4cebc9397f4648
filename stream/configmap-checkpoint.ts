import { ApiException, CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Checkpoint, CheckpointStore } from '../core/aws/dynamo-stream-feed.js';

/**
 * Stream checkpoints in a ConfigMap (key `checkpoint.json`), so the controller needs no volume and a new leader
 * resumes where the old one committed. Writes replace with the read resourceVersion: a deposed leader that still
 * writes gets a 409 and fails instead of moving the checkpoint under the new one.
 */
export class ConfigMapCheckpointStore implements CheckpointStore {
  private readonly api: CoreV1Api;
  private resourceVersion: string | undefined;

  constructor(
    kc: KubeConfig,
    readonly namespace: string,
    readonly name: string,
  ) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async load(): Promise<Checkpoint> {
    try {
      const cm = await this.api.readNamespacedConfigMap({ name: this.name, namespace: this.namespace });
      this.resourceVersion = cm.metadata?.resourceVersion;
      const raw = cm.data?.['checkpoint.json'];
      return raw ? (JSON.parse(raw) as Checkpoint) : { shards: {} };
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) {
        this.resourceVersion = undefined;
        return { shards: {} };
      }
      throw err;
    }
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'embedctl',
          'app.kubernetes.io/component': 'stream-processor',
        },
        ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
      },
      data: { 'checkpoint.json': JSON.stringify(checkpoint) },
    };
    const res = this.resourceVersion
      ? await this.api.replaceNamespacedConfigMap({ name: this.name, namespace: this.namespace, body })
      : await this.api.createNamespacedConfigMap({ namespace: this.namespace, body });
    this.resourceVersion = res.metadata?.resourceVersion;
  }
}

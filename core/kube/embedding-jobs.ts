import {
  API_VERSION,
  GROUP,
  PLURAL,
  VERSION,
  type EmbeddingJob,
  type EmbeddingJobStatus,
} from '../contracts/embedding-job.js';
import { MERGE_PATCH, isAlreadyExists, isNotFound, type Kube } from './rest.js';

/** Status fields as a merge patch: `null` deletes a field (e.g. clearing `report` when a new attempt starts). */
export type StatusPatch = { [K in keyof EmbeddingJobStatus]?: EmbeddingJobStatus[K] | null };

/** Typed EmbeddingJob client over the REST client. */
export class EmbeddingJobClient {
  constructor(private readonly kube: Kube) {}

  static collectionPath(namespace: string): string {
    return `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
  }

  private path(namespace: string, name?: string): string {
    return EmbeddingJobClient.collectionPath(namespace) + (name ? `/${name}` : '');
  }

  /** Creates it; `created: false` when one with that name already exists (a redelivered message). */
  async create(ej: EmbeddingJob, signal?: AbortSignal): Promise<{ created: boolean }> {
    const ns = ej.metadata.namespace;
    if (!ns) throw new Error(`EmbeddingJob ${ej.metadata.name} has no namespace`);
    try {
      await this.kube.request('POST', this.path(ns), {
        body: { ...ej, apiVersion: API_VERSION },
        ...(signal ? { signal } : {}),
      });
      return { created: true };
    } catch (err) {
      if (isAlreadyExists(err)) return { created: false };
      throw err;
    }
  }

  async get(namespace: string, name: string): Promise<EmbeddingJob | undefined> {
    try {
      return await this.kube.request<EmbeddingJob>('GET', this.path(namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(namespace: string): Promise<EmbeddingJob[]> {
    const items: EmbeddingJob[] = [];
    let cont: string | undefined;
    do {
      const page = await this.kube.request<{ items: EmbeddingJob[]; metadata: { continue?: string } }>(
        'GET',
        this.path(namespace),
        {
          query: { limit: 500, continue: cont },
        },
      );
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
    } while (cont);
    return items;
  }

  /**
   * Merge-patches the status subresource. With `resourceVersion` the write is conditional (409 Conflict when the
   * object changed since it was read), so a report written by a worker in between is never overwritten.
   */
  async patchStatus(
    namespace: string,
    name: string,
    status: StatusPatch,
    resourceVersion?: string,
  ): Promise<EmbeddingJob> {
    return this.kube.request<EmbeddingJob>('PATCH', `${this.path(namespace, name)}/status`, {
      body: { ...(resourceVersion ? { metadata: { resourceVersion } } : {}), status },
      contentType: MERGE_PATCH,
    });
  }

  /** Deletes it (if `uid` is given, only that incarnation); a missing object is not an error. */
  async delete(namespace: string, name: string, uid?: string): Promise<void> {
    try {
      await this.kube.request('DELETE', this.path(namespace, name), {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(uid ? { preconditions: { uid } } : {}) },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

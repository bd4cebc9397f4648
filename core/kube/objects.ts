import type { ConfigMap } from 'kubernetes-types/core/v1.js';
import type { Lease } from 'kubernetes-types/coordination/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { isNotFound, type Kube, type RequestOptionsK } from './rest.js';

export type CallOptions = Pick<RequestOptionsK, 'signal' | 'timeoutMs'>;

/**
 * Typed get/create/replace of one namespaced kind over `Kube`, so callers never build paths or test status codes:
 * a missing object reads as `undefined`; conflicts surface as KubeApiError (`isConflict`, `isAlreadyExists`).
 */
export class NamespacedResource<T extends { metadata?: ObjectMeta }> {
  constructor(
    private readonly kube: Kube,
    /** `/api/v1` or `/apis/<group>/<version>`. */
    private readonly prefix: string,
    private readonly plural: string,
  ) {}

  path(namespace: string, name?: string): string {
    return `${this.prefix}/namespaces/${namespace}/${this.plural}${name ? `/${name}` : ''}`;
  }

  async get(namespace: string, name: string, opts: CallOptions = {}): Promise<T | undefined> {
    try {
      return await this.kube.request<T>('GET', this.path(namespace, name), opts);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create(namespace: string, body: T, opts: CallOptions = {}): Promise<T> {
    return this.kube.request<T>('POST', this.path(namespace), { ...opts, body });
  }

  /** Optimistic when `body.metadata.resourceVersion` is set: 409 Conflict if the object changed since. */
  replace(namespace: string, name: string, body: T, opts: CallOptions = {}): Promise<T> {
    return this.kube.request<T>('PUT', this.path(namespace, name), { ...opts, body });
  }
}

export const configMaps = (kube: Kube) => new NamespacedResource<ConfigMap>(kube, '/api/v1', 'configmaps');
export const leases = (kube: Kube) =>
  new NamespacedResource<Lease>(kube, '/apis/coordination.k8s.io/v1', 'leases');

import {
  ApiException,
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
} from '@kubernetes/client-node';
import type { LeaseBackend, LeaseState } from './lease.js';

/**
 * Lease backend on a coordination.k8s.io/v1 Lease. Compare-and-swap is the apiserver's optimistic concurrency
 * (replace with the read resourceVersion → 409 on conflict). The fencing token is `spec.leaseTransitions`.
 * The charts create the Lease empty (programs only get/update it); `create` is attempted only when it is absent.
 */
export class KubeLeaseBackend implements LeaseBackend {
  readonly description: string;
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    readonly namespace: string,
    readonly name: string,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.description = `lease/${namespace}/${name}`;
  }

  async read(): Promise<{ state: LeaseState | undefined; version: string | undefined }> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return { state: undefined, version: undefined };
      throw err;
    }
    const spec = lease.spec ?? {};
    const renew = spec.renewTime ? new Date(spec.renewTime as unknown as string | Date).getTime() : 0;
    return {
      state: {
        holder: spec.holderIdentity ?? '',
        token: spec.leaseTransitions ?? 0,
        renewedAt: Number.isFinite(renew) ? renew : 0,
        durationMs: (spec.leaseDurationSeconds ?? 15) * 1000,
      },
      version: lease.metadata?.resourceVersion ?? '',
    };
  }

  async write(state: LeaseState | undefined, version: string | undefined): Promise<boolean> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(version ? { resourceVersion: version } : {}),
      },
      spec: state
        ? {
            holderIdentity: state.holder || undefined,
            leaseTransitions: state.token,
            leaseDurationSeconds: Math.max(1, Math.ceil(state.durationMs / 1000)),
            ...(state.renewedAt
              ? { renewTime: new V1MicroTime(state.renewedAt), acquireTime: new V1MicroTime(state.renewedAt) }
              : {}),
          }
        : {},
    };
    try {
      if (version === undefined) await this.api.createNamespacedLease({ namespace: this.namespace, body });
      else await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
      return true;
    } catch (err) {
      if (err instanceof ApiException && (err.code === 409 || err.code === 422)) return false;
      throw err;
    }
  }
}

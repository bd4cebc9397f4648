import type { Lease } from 'kubernetes-types/coordination/v1.js';
import { leases, type NamespacedResource } from '../kube/objects.js';
import { isAlreadyExists, isConflict, type Kube } from '../kube/rest.js';
import type { LeaseBackend, LeaseRecord, StoredLease } from './lock.js';

/** metav1.MicroTime wants six fractional digits. */
export const microTime = (d = new Date()): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

const millis = (t: string | undefined): number => {
  const ms = t ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : 0;
};

/**
 * LeaseLock backend on a coordination.k8s.io/v1 Lease. Compare-and-swap is the apiserver's optimistic concurrency
 * (replace with the read resourceVersion → 409 on conflict); the fencing token is `spec.leaseTransitions`. The
 * charts create the Lease empty (programs only get/update it); it is created only when absent. A replace keeps the
 * Lease's metadata (labels, annotations) as read.
 */
export class KubeLeaseBackend implements LeaseBackend {
  readonly description: string;
  private readonly leases: NamespacedResource<Lease>;
  private lastRead: Lease | undefined;

  constructor(
    kube: Kube,
    readonly namespace: string,
    readonly name: string,
    /** Bound on each request (the leader elector's is twice its retry period). Default 30 s. */
    private readonly timeoutMs?: number,
  ) {
    this.leases = leases(kube);
    this.description = `lease/${namespace}/${name}`;
  }

  async read(): Promise<StoredLease | undefined> {
    const lease = await this.leases.get(this.namespace, this.name, this.callOptions());
    this.lastRead = lease;
    if (!lease) return undefined;
    const spec = lease.spec ?? {};
    return {
      record: {
        holder: spec.holderIdentity ?? '',
        token: spec.leaseTransitions ?? 0,
        durationMs: (spec.leaseDurationSeconds ?? 15) * 1000,
        acquireTime: millis(spec.acquireTime),
        renewTime: millis(spec.renewTime),
      },
      version: lease.metadata?.resourceVersion ?? '',
    };
  }

  async write(record: LeaseRecord, version: string | undefined): Promise<boolean> {
    const metadata = this.lastRead?.metadata?.resourceVersion === version ? this.lastRead?.metadata : {};
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...metadata,
        name: this.name,
        namespace: this.namespace,
        ...(version ? { resourceVersion: version } : {}),
      },
      spec: {
        holderIdentity: record.holder, // '' when released, as client-go writes it
        leaseTransitions: record.token,
        leaseDurationSeconds: Math.max(1, Math.ceil(record.durationMs / 1000)),
        ...(record.acquireTime ? { acquireTime: microTime(new Date(record.acquireTime)) } : {}),
        ...(record.renewTime ? { renewTime: microTime(new Date(record.renewTime)) } : {}),
      },
    };
    try {
      if (version === undefined) await this.leases.create(this.namespace, body, this.callOptions());
      else await this.leases.replace(this.namespace, this.name, body, this.callOptions());
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) return false;
      throw err;
    }
  }

  private callOptions() {
    return this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs };
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { isAlreadyExists, isConflict, isNotFound, type Kube } from './rest.js';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 * - acquire when the Lease is free, ours, or not renewed for `leaseDurationMs` *as observed on our clock*
 *   (we never compare our clock with the holder's timestamps);
 * - writes are optimistic (resourceVersion), so two candidates never both win;
 * - the leader renews every `retryPeriodMs`; if it cannot renew for `renewDeadlineMs` it steps down;
 * - on graceful stop it releases the Lease (empty holder), so a standby takes over within one retry period.
 * Defaults: 15 s / 10 s / 2 s (client-go).
 */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

interface Lease {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** metav1.MicroTime wants six fractional digits. */
export const microTime = (d = new Date()): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private observed: { key: string; at: number } | undefined;
  private current: Lease | undefined;
  private leading = false;

  constructor(
    private readonly kube: Kube,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.leaseMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseMs) {
      throw new Error(
        `renewDeadlineMs (${this.renewDeadlineMs}) must be less than leaseDurationMs (${this.leaseMs})`,
      );
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases`;
  }

  /**
   * Blocks until leadership is won (resolves `true`) or `signal` aborts (`false`).
   */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew().catch((err: unknown) => this.logError(err))) {
        this.leading = true;
        this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
        return true;
      }
      await sleep(this.jitter(), undefined, { signal }).catch(() => undefined);
    }
    return false;
  }

  /**
   * Renews until `signal` aborts (resolves `'stopped'`) or renewal fails for `renewDeadlineMs` (`'lost'`).
   */
  async hold(signal: AbortSignal): Promise<'stopped' | 'lost'> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => this.logError(err));
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew >= this.renewDeadlineMs || (ok === false && this.heldByOther())) {
        this.leading = false;
        this.opts.log.error({ lease: this.opts.name, identity: this.opts.identity }, 'lost leadership');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Gives the Lease up (empty holder, 1 s duration) if we hold it. */
  async release(): Promise<void> {
    if (!this.leading || !this.current) return;
    this.leading = false;
    const lease: Lease = {
      ...this.current,
      spec: { ...this.current.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
    };
    try {
      await this.kube.request('PUT', `${this.path}/${this.opts.name}`, { body: lease });
      this.opts.log.info({ lease: this.opts.name }, 'released leadership');
    } catch (err) {
      this.opts.log.warn({ lease: this.opts.name, err: String(err) }, 'could not release the Lease');
    }
  }

  private heldByOther(): boolean {
    const holder = this.current?.spec?.holderIdentity;
    return !!holder && holder !== this.opts.identity;
  }

  private logError(err: unknown): false {
    if (!isConflict(err) && !isAlreadyExists(err)) {
      this.opts.log.warn({ lease: this.opts.name, err: String(err) }, 'lease request failed');
    }
    return false;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.max(1, Math.round(this.leaseMs / 1000));
    let lease: Lease;
    try {
      lease = await this.kube.request<Lease>('GET', `${this.path}/${this.opts.name}`, {
        timeoutMs: this.retryMs * 2,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.current = await this.kube.request<Lease>('POST', this.path, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: {
            holderIdentity: this.opts.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    this.current = lease;
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity}|${spec.renewTime}|${spec.leaseDurationSeconds}`;
    if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
    const held = !!spec.holderIdentity && spec.holderIdentity !== this.opts.identity;
    const expired = Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (held && !expired) return false;
    const ours = spec.holderIdentity === this.opts.identity;
    const next: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      },
    };
    this.current = await this.kube.request<Lease>('PUT', `${this.path}/${this.opts.name}`, {
      body: next,
      timeoutMs: this.retryMs * 2,
    });
    return true;
  }

  private jitter(): number {
    return this.retryMs * (1 + Math.random() * 0.2);
  }
}

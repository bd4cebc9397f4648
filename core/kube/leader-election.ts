import { setTimeout as sleep } from 'node:timers/promises';
import { KubeLeaseBackend } from '../lease/kube-lease.js';
import { LeaseLock } from '../lease/lock.js';
import type { Logger } from '../log.js';
import type { Kube } from './rest.js';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it, over the one LeaseLock
 * (core/lease/lock.ts: expiry as observed on our clock, optimistic writes):
 * - the leader renews every `retryPeriodMs`; if it cannot renew for `renewDeadlineMs` it steps down, and at once
 *   when the Lease names another holder;
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

export class LeaderElector {
  private readonly lock: LeaseLock;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private leading = false;

  constructor(
    kube: Kube,
    private readonly opts: LeaderElectionOptions,
  ) {
    const leaseMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= leaseMs) {
      throw new Error(
        `renewDeadlineMs (${this.renewDeadlineMs}) must be less than leaseDurationMs (${leaseMs})`,
      );
    }
    this.lock = new LeaseLock(new KubeLeaseBackend(kube, opts.namespace, opts.name, this.retryMs * 2), {
      identity: opts.identity,
      durationMs: leaseMs,
    });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Blocks until leadership is won (resolves `true`) or `signal` aborts (`false`). */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const token = await this.lock.tryAcquire().catch((err: unknown) => this.logError(err));
      if (token !== undefined) {
        this.leading = true;
        this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity, token }, 'became leader');
        return true;
      }
      await sleep(this.jitter(), undefined, { signal }).catch(() => undefined);
    }
    return false;
  }

  /** Renews until `signal` aborts (resolves `'stopped'`) or renewal fails for `renewDeadlineMs` (`'lost'`). */
  async hold(signal: AbortSignal): Promise<'stopped' | 'lost'> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      const result = await this.lock.renew().catch((err: unknown) => this.logError(err));
      if (result === 'renewed') lastRenew = Date.now();
      else if (result === 'lost' || Date.now() - lastRenew >= this.renewDeadlineMs) {
        this.leading = false;
        this.lock.drop();
        this.opts.log.error({ lease: this.opts.name, identity: this.opts.identity }, 'lost leadership');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Gives the Lease up (empty holder, 1 s duration) if we hold it. */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    try {
      if (await this.lock.release()) this.opts.log.info({ lease: this.opts.name }, 'released leadership');
    } catch (err) {
      this.opts.log.warn({ lease: this.opts.name, err }, 'could not release the Lease');
    }
  }

  private logError(err: unknown): undefined {
    this.opts.log.warn({ lease: this.opts.name, err }, 'lease request failed');
    return undefined;
  }

  private jitter(): number {
    return this.retryMs * (1 + Math.random() * 0.2);
  }
}

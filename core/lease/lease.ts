import { setTimeout as sleep } from 'node:timers/promises';
import { PipelineError } from '../errors.js';
import type { Logger } from '../log.js';
import { LeaseLock, type LeaseBackend } from './lock.js';

/**
 * The compactor's lease (one compactor writes at a time; docs/adr/0004-single-compactor-fencing-token.md): a LeaseLock renewed in the background, plus the fence. A
 * writer re-reads the backend right before its commit point (`assertHeld`) and refuses to publish when the lease
 * moved on or it could not renew within the duration, so a paused or partitioned holder never overwrites a newer one.
 */
export class LeaseLostError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('LeaseLost', message, context);
  }
}

export interface LeaseOptions {
  identity: string;
  durationMs?: number;
  /** How often the holder renews; default a third of the duration. */
  renewEveryMs?: number;
  /** How often a waiting candidate retries. */
  retryEveryMs?: number;
  log?: Logger;
  now?: () => number;
}

export class FencedLease {
  readonly identity: string;
  readonly lock: LeaseLock;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly lostController = new AbortController();

  constructor(
    private readonly backend: LeaseBackend,
    private readonly opts: LeaseOptions,
  ) {
    this.identity = opts.identity;
    const durationMs = opts.durationMs ?? 15_000;
    this.lock = new LeaseLock(backend, {
      identity: opts.identity,
      durationMs,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.renewEveryMs = opts.renewEveryMs ?? Math.max(100, Math.floor(durationMs / 3));
    this.retryEveryMs = opts.retryEveryMs ?? Math.max(100, Math.floor(durationMs / 5));
  }

  /** The fencing token of the current holding, or undefined when not held. */
  get token(): number | undefined {
    return this.lock.token;
  }

  /** Aborted when the lease is lost (renewal failed past expiry, or another holder took it). */
  get lostSignal(): AbortSignal {
    return this.lostController.signal;
  }

  /** One attempt: takes the lease if it is takeable (lock.ts). Returns the token or undefined. */
  async tryAcquire(): Promise<number | undefined> {
    const token = await this.lock.tryAcquire();
    if (token === undefined) return undefined;
    this.opts.log?.info(
      { lease: this.backend.description, token, previous: this.lock.takenFrom },
      'lease acquired',
    );
    this.startRenewing();
    return token;
  }

  /** Waits until the lease is ours. */
  async acquire(signal?: AbortSignal): Promise<number> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const token = await this.tryAcquire();
        if (token !== undefined) return token;
      } catch (err) {
        this.opts.log?.warn({ err }, 'lease acquire attempt failed');
      }
      await sleep(this.retryEveryMs, undefined, { signal });
    }
  }

  /**
   * The fence: re-reads the backend and throws LeaseLostError unless we still hold it with our token and renewed it
   * within its duration. Call right before every commit point (switching CURRENT).
   */
  async assertHeld(): Promise<number> {
    const token = this.token;
    if (token === undefined || this.lostController.signal.aborted) {
      throw new LeaseLostError(`lease ${this.backend.description} is not held`, { identity: this.identity });
    }
    const { ours, record } = await this.lock.check();
    if (!ours || this.lock.expired()) {
      const why = ours
        ? `lease ${this.backend.description} not renewed within its duration`
        : `lease ${this.backend.description} lost: held by ${record?.holder} token ${record?.token}, ours ${token}`;
      this.markLost(why);
      throw new LeaseLostError(why, { identity: this.identity });
    }
    return token;
  }

  /** Renews once; marks the lease lost when someone else holds it or it was not renewed within its duration. */
  async renew(): Promise<void> {
    if (this.token === undefined) return;
    if (this.lock.expired()) return this.markLost('lease not renewed within its duration');
    try {
      const result = await this.lock.renew();
      if (result === 'lost') {
        return this.markLost(`lease taken by ${this.lock.lastSeen?.holder || 'nobody'}`);
      }
      if (result === 'conflict') this.opts.log?.warn('lease renewal conflicted; retrying');
    } catch (err) {
      this.opts.log?.warn({ err }, 'lease renewal failed');
    }
    if (this.lock.expired()) this.markLost('lease not renewed within its duration');
  }

  /** Gives the lease up (only if still ours), so a successor need not wait for expiry. */
  async release(): Promise<void> {
    this.stopRenewing();
    try {
      await this.lock.release();
    } catch (err) {
      this.opts.log?.warn({ err }, 'lease release failed; it will expire');
    }
  }

  private markLost(why: string): void {
    this.lock.drop();
    this.stopRenewing();
    if (this.lostController.signal.aborted) return;
    this.opts.log?.error({ lease: this.backend.description, why }, 'lease lost');
    this.lostController.abort(new LeaseLostError(why, { identity: this.identity }));
  }

  private startRenewing(): void {
    this.stopRenewing();
    const tick = async () => {
      await this.renew();
      if (this.token !== undefined) {
        this.renewTimer = setTimeout(() => void tick(), this.renewEveryMs);
        this.renewTimer.unref();
      }
    };
    this.renewTimer = setTimeout(() => void tick(), this.renewEveryMs);
    this.renewTimer.unref();
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }
}

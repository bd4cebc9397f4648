import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, PipelineError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * A lease with a fencing token (docs/adr/0004-single-compactor-fencing-token.md). The state lives in a backend that can
 * compare-and-swap (a coordination.k8s.io Lease via resourceVersion, or a lock-protected file locally). Every
 * acquisition increments the token; a writer re-reads the backend right before its commit point (`assertHeld`) and
 * refuses to publish when the lease moved on, so a paused or partitioned holder can never overwrite a newer one.
 */
export interface LeaseState {
  holder: string;
  /** Fencing token: strictly increases with every acquisition. */
  token: number;
  /** ms since epoch of the last acquire/renew. */
  renewedAt: number;
  durationMs: number;
}

export interface LeaseBackend {
  readonly description: string;
  /** Current state and an opaque version for compare-and-swap (undefined when the lease does not exist yet). */
  read(): Promise<{ state: LeaseState | undefined; version: string | undefined }>;
  /** Writes only if the stored version is still `version`; false on conflict. */
  write(state: LeaseState | undefined, version: string | undefined): Promise<boolean>;
}

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

export function isExpired(state: LeaseState | undefined, now: number): boolean {
  return !state || !state.holder || state.renewedAt + state.durationMs <= now;
}

export class FencedLease {
  readonly identity: string;
  private readonly durationMs: number;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private readonly now: () => number;
  private heldToken: number | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly lostController = new AbortController();
  private lastRenewOk = 0;

  constructor(
    private readonly backend: LeaseBackend,
    private readonly opts: LeaseOptions,
  ) {
    this.identity = opts.identity;
    this.durationMs = opts.durationMs ?? 15_000;
    this.renewEveryMs = opts.renewEveryMs ?? Math.max(100, Math.floor(this.durationMs / 3));
    this.retryEveryMs = opts.retryEveryMs ?? Math.max(100, Math.floor(this.durationMs / 5));
    this.now = opts.now ?? Date.now;
  }

  /** The fencing token of the current holding, or undefined when not held. */
  get token(): number | undefined {
    return this.heldToken;
  }

  /** Aborted when the lease is lost (renewal failed past expiry, or another holder took it). */
  get lostSignal(): AbortSignal {
    return this.lostController.signal;
  }

  /** One attempt: takes the lease if it is free, expired, or already ours. Returns the token or undefined. */
  async tryAcquire(): Promise<number | undefined> {
    const { state, version } = await this.backend.read();
    const now = this.now();
    if (!isExpired(state, now) && state!.holder !== this.identity) return undefined;
    // Re-acquiring our own unexpired lease after a restart still bumps the token: the previous incarnation is fenced.
    const next: LeaseState = {
      holder: this.identity,
      token: (state?.token ?? 0) + 1,
      renewedAt: now,
      durationMs: this.durationMs,
    };
    if (!(await this.backend.write(next, version))) return undefined;
    this.heldToken = next.token;
    this.lastRenewOk = now;
    this.opts.log?.info(
      { lease: this.backend.description, token: next.token, previous: state?.holder },
      'lease acquired',
    );
    this.startRenewing();
    return next.token;
  }

  /** Waits until the lease is ours. */
  async acquire(signal?: AbortSignal): Promise<number> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const token = await this.tryAcquire();
        if (token !== undefined) return token;
      } catch (err) {
        this.opts.log?.warn({ err: errorMessage(err) }, 'lease acquire attempt failed');
      }
      await sleep(this.retryEveryMs, undefined, { signal });
    }
  }

  /**
   * The fence: re-reads the backend and throws LeaseLostError unless we still hold it with our token and it has not
   * expired. Call right before every commit point (switching CURRENT).
   */
  async assertHeld(): Promise<number> {
    const token = this.heldToken;
    if (token === undefined || this.lostController.signal.aborted) {
      throw new LeaseLostError(`lease ${this.backend.description} is not held`, { identity: this.identity });
    }
    const { state } = await this.backend.read();
    const now = this.now();
    if (!state || state.holder !== this.identity || state.token !== token || isExpired(state, now)) {
      this.markLost(
        `lease ${this.backend.description} moved to ${state?.holder ?? 'nobody'} (token ${state?.token})`,
      );
      throw new LeaseLostError(
        `lease ${this.backend.description} lost: held by ${state?.holder} token ${state?.token}, ours ${token}`,
        {
          identity: this.identity,
        },
      );
    }
    return token;
  }

  /** Renews once; marks the lease lost when someone else holds it or the renewal is past our expiry. */
  async renew(): Promise<void> {
    const token = this.heldToken;
    if (token === undefined) return;
    try {
      const { state, version } = await this.backend.read();
      if (!state || state.holder !== this.identity || state.token !== token) {
        this.markLost(`lease taken by ${state?.holder ?? 'nobody'}`);
        return;
      }
      const now = this.now();
      if (isExpired(state, now)) {
        this.markLost('lease expired before renewal');
        return;
      }
      const ok = await this.backend.write({ ...state, renewedAt: now, durationMs: this.durationMs }, version);
      if (ok) this.lastRenewOk = now;
      else this.opts.log?.warn('lease renewal conflicted; retrying');
    } catch (err) {
      this.opts.log?.warn({ err: errorMessage(err) }, 'lease renewal failed');
    }
    if (this.now() - this.lastRenewOk >= this.durationMs)
      this.markLost('lease not renewed within its duration');
  }

  /** Gives the lease up (only if still ours), so a successor need not wait for expiry. */
  async release(): Promise<void> {
    this.stopRenewing();
    const token = this.heldToken;
    this.heldToken = undefined;
    if (token === undefined) return;
    try {
      const { state, version } = await this.backend.read();
      if (state && state.holder === this.identity && state.token === token) {
        await this.backend.write({ ...state, holder: '', renewedAt: 0 }, version);
      }
    } catch (err) {
      this.opts.log?.warn({ err: errorMessage(err) }, 'lease release failed; it will expire');
    }
  }

  private markLost(why: string): void {
    if (this.lostController.signal.aborted) return;
    this.opts.log?.error({ lease: this.backend.description, why }, 'lease lost');
    this.stopRenewing();
    this.heldToken = undefined;
    this.lostController.abort(new LeaseLostError(why, { identity: this.identity }));
  }

  private startRenewing(): void {
    this.stopRenewing();
    const tick = async () => {
      await this.renew();
      if (this.heldToken !== undefined) {
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

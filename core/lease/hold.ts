import { PipelineError } from '../errors.js';
import type { Logger } from '../log.js';
import { FencedLease } from './lease.js';
import type { LeaseBackend, LeaseRecord } from './lock.js';

/**
 * Someone else holds the lease and did not give it up within the wait: names the holder, its token and when it last
 * renewed (by its own clock: information for the operator, never used to decide). Transient (exit code 1): nothing is wrong with the command, it can succeed once the holder is gone.
 */
export class LeaseHeldError extends PipelineError {
  constructor(
    readonly lease: string,
    readonly holder: LeaseRecord | undefined,
    readonly waitedMs: number,
    hint: string,
  ) {
    const who = holder?.holder
      ? `${holder.holder} (token ${holder.token}, renewed ${Math.max(0, Math.round((Date.now() - holder.renewTime) / 1000))} s ago, for ${Math.round(holder.durationMs / 1000)} s)`
      : 'another holder';
    super(
      'Transient',
      `${lease} is held by ${who}; waited ${(waitedMs / 1000).toFixed(waitedMs < 10_000 ? 1 : 0)} s for it${hint ? `: ${hint}` : ''}`,
      { lease, holder: holder?.holder ?? null, token: holder?.token ?? null, waitedMs },
    );
  }
}

export interface HoldOptions {
  identity: string;
  /** The lease's duration while held (renewed every third of it); a crashed holder blocks others this long. */
  durationMs: number;
  /** How long to wait for a lease someone else holds; 0: one attempt. */
  waitMs: number;
  /** How often to retry while waiting (default 500 ms). */
  retryEveryMs?: number;
  /** Said after the holder in LeaseHeldError: what to do about it. */
  hint?: string;
  log?: Logger;
}

/**
 * Runs `fn` holding `backend`'s lease with a fencing token (acquired within `waitMs`, else LeaseHeldError naming the
 * holder), renewing it meanwhile, and gives it up afterwards. The one way `embedctl snapshot restore` takes the
 * compactor's lease, a file lease in local mode and the coordination.k8s.io Lease in the cloud; `fn` gets the held
 * lease for its fence (fenceVolume, FencedLease.assertHeld) right before each commit point.
 */
export async function withHeldLease<T>(
  backend: LeaseBackend,
  opts: HoldOptions,
  fn: (lease: FencedLease) => Promise<T>,
): Promise<T> {
  const lease = new FencedLease(backend, {
    identity: opts.identity,
    durationMs: opts.durationMs,
    retryEveryMs: opts.retryEveryMs ?? 500,
    ...(opts.log ? { log: opts.log } : {}),
  });
  const started = Date.now();
  let token = await lease.tryAcquire();
  if (token === undefined && opts.waitMs > 0) {
    try {
      token = await lease.acquire(AbortSignal.timeout(opts.waitMs));
    } catch (err) {
      if (!(err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))) throw err;
    }
  }
  if (token === undefined) {
    const holder = lease.lock.lastSeen;
    throw new LeaseHeldError(
      backend.description,
      holder?.holder ? holder : undefined,
      Date.now() - started,
      opts.hint ?? '',
    );
  }
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}

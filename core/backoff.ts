/**
 * The one retry delay of the project: `baseMs` doubling per attempt (attempt 0 waits `baseMs`), capped at `maxMs`,
 * minus up to `jitter` of itself so that many clients retrying the same outage spread out ("equal jitter" when
 * jitter is 0.5). Pure: pass `random` where a test or a pure decision needs the exact value.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** Fraction (0–1) of the delay that may be taken off at random. Default 0.2. */
  jitter?: number;
}

export function backoffMs(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const capped = Math.min(p.baseMs * 2 ** Math.max(0, attempt), p.maxMs);
  return Math.round(capped * (1 - (p.jitter ?? 0.2) * random()));
}

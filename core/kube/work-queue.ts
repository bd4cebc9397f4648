import { backoffMs } from '../backoff.js';

/**
 * A keyed work queue with client-go semantics:
 * - a key is queued at most once (adds while queued are merged);
 * - a key is processed by at most one worker at a time (an add while processing is queued again on `done`);
 * - `addRateLimited` delays a key by per-key exponential backoff combined with an overall token bucket;
 *   `forget` resets the key's backoff after a success;
 * - `addAfter` delays a key (earliest delay wins while several are pending).
 */

export interface RateLimiter {
  /** Delay before the next retry of `key` (ms); counts the retry. */
  when(key: string): number;
  forget(key: string): void;
  retries(key: string): number;
}

/**
 * Per-key `base · 2^failures`, capped at `max` (client-go: 5 ms → 1000 s). No jitter, as in client-go's
 * ItemExponentialFailureRateLimiter: the keys are independent objects, not clients hammering one server, and the
 * token bucket combined with it already bounds the overall rate; exact delays keep the retry schedule predictable.
 */
export class ExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {}
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffMs(n, { baseMs: this.baseMs, maxMs: this.maxMs, jitter: 0 });
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Overall token bucket: `qps` tokens per second, up to `burst` saved; returns the wait for the next token. */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }
  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
  forget(): void {}
  retries(): number {
    return 0;
  }
}

/** The larger delay of several limiters (client-go's default controller rate limiter). */
export class MaxOf implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export const defaultRateLimiter = (): RateLimiter =>
  new MaxOf(new ExponentialBackoff(5, 1_000_000), new TokenBucket(10, 100));

/** Observes the queue (Prometheus adapters implement it). */
export interface QueueObserver {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Time a key waited in the queue before a worker took it (seconds). */
  queued(seconds: number): void;
  /** Time a worker held a key (seconds). */
  worked(seconds: number): void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(
    readonly limiter: RateLimiter = defaultRateLimiter(),
    private readonly observer?: QueueObserver,
  ) {}

  get length(): number {
    return this.queue.length - this.head;
  }

  /** Keys queued, delayed or being processed. */
  get pending(): number {
    return this.length + this.processing.size + this.delayed.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.observer?.added();
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.observer?.retried();
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /** Next key, waiting if none; `undefined` once the queue shuts down. Pair every key with `done(key)`. */
  get(): Promise<string | undefined> {
    if (this.length > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.observer?.worked((performance.now() - started) / 1000);
    this.startedAt.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Stops handing out keys; waiting `get` calls resolve with `undefined`. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queue.push(key);
      waiter(this.take());
      return;
    }
    this.queue.push(key);
    this.observer?.depth(this.length);
  }

  private take(): string {
    const key = this.queue[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.observer?.queued((performance.now() - added) / 1000);
    this.addedAt.delete(key);
    this.startedAt.set(key, performance.now());
    this.observer?.depth(this.length);
    return key;
  }
}

/**
 * One lease lock with client-go's semantics (k8s.io/client-go/tools/leaderelection), for the controller's leader
 * election and the compactor's fenced lease alike:
 * - a candidate takes the lease when it is free, carries our identity, or has not changed for its duration *as
 *   observed on our clock*: we time how long the record has stayed the same since we first saw it, and never compare
 *   our clock with the holder's timestamps (its `renewTime` may be skewed by hours, and only its changes count);
 * - the holder judges its own expiry by its own clock: `durationMs` since its last successful write;
 * - writes are compare-and-swap on the backend's version, so two candidates never both win;
 * - `token` (a Kubernetes Lease's `leaseTransitions`) increases with every acquisition and is the fencing token;
 *   `acquireTime` is set on acquisition only, `renewTime` on every write.
 */
export interface LeaseRecord {
  /** '' when free. */
  holder: string;
  /** Fencing token: strictly increases with every acquisition (the first is 1). */
  token: number;
  durationMs: number;
  /** ms since epoch on the acquirer's clock: information only, never compared with ours. */
  acquireTime: number;
  /** ms since epoch on the holder's clock: information only; that it changes is what candidates watch. */
  renewTime: number;
}

export interface StoredLease {
  record: LeaseRecord;
  /** Opaque version for compare-and-swap (a resourceVersion, a file generation). */
  version: string;
}

export interface LeaseBackend {
  readonly description: string;
  /** The stored record, or undefined when the lease does not exist yet. */
  read(): Promise<StoredLease | undefined>;
  /** Creates (`version` undefined) or replaces the record only if it is still at `version`; false on conflict. */
  write(record: LeaseRecord, version: string | undefined): Promise<boolean>;
}

export interface LeaseLockOptions {
  identity: string;
  /** How long the lease lasts without a renewal (written into the record for candidates). */
  durationMs: number;
  now?: () => number;
}

export type RenewResult = 'renewed' | 'lost' | 'conflict';

/** Whether a record not held by us may be taken: free, our identity, or unchanged for its duration (our clock). */
export function takeable(record: LeaseRecord, identity: string, unchangedForMs: number): boolean {
  return !record.holder || record.holder === identity || unchangedForMs >= record.durationMs;
}

const fingerprint = (r: LeaseRecord) => `${r.holder}|${r.token}|${r.renewTime}|${r.durationMs}`;

export class LeaseLock {
  readonly identity: string;
  readonly durationMs: number;
  private readonly now: () => number;
  private held: LeaseRecord | undefined;
  private lastWriteAt = 0;
  /** Holder of the record our last acquisition replaced ('' when it was free). */
  takenFrom: string | undefined;
  /** The last record read and the local time it was first seen in that state. */
  private observed: { record: LeaseRecord; key: string; at: number } | undefined;

  constructor(
    readonly backend: LeaseBackend,
    opts: LeaseLockOptions,
  ) {
    this.identity = opts.identity;
    this.durationMs = opts.durationMs;
    this.now = opts.now ?? Date.now;
  }

  /** The fencing token while we hold the lease. */
  get token(): number | undefined {
    return this.held?.token;
  }

  /** The record as last read or written (the holder to name when we could not take it). */
  get lastSeen(): LeaseRecord | undefined {
    return this.observed?.record;
  }

  /** We have not renewed within the duration (our clock): a candidate may have taken over by now. */
  expired(): boolean {
    return this.held === undefined || this.now() - this.lastWriteAt >= this.durationMs;
  }

  /**
   * One attempt: takes the lease if `takeable`, or renews it if this instance already holds it. Returns the token
   * held afterwards, or undefined (held by another, or a concurrent write won).
   */
  async tryAcquire(): Promise<number | undefined> {
    if (this.held) return (await this.renew()) === 'renewed' ? this.token : undefined;
    const stored = await this.backend.read();
    const now = this.now();
    if (stored && !takeable(stored.record, this.identity, now - this.observe(stored.record, now))) {
      return undefined;
    }
    // Taking our own identity's lease (a restarted process) still bumps the token: the previous one is fenced.
    this.takenFrom = stored?.record.holder ?? '';
    const next: LeaseRecord = {
      holder: this.identity,
      token: (stored?.record.token ?? 0) + 1,
      durationMs: this.durationMs,
      acquireTime: now,
      renewTime: now,
    };
    return (await this.write(next, stored?.version, now)) ? next.token : undefined;
  }

  /** Renews our holding: 'lost' when the record moved on (another holder or token), 'conflict' when a write raced. */
  async renew(): Promise<RenewResult> {
    if (!this.held) return 'lost';
    const stored = await this.backend.read();
    const now = this.now();
    if (stored) this.observe(stored.record, now);
    if (!stored || !this.isOurs(stored.record)) {
      this.held = undefined;
      return 'lost';
    }
    const next = { ...stored.record, durationMs: this.durationMs, renewTime: now };
    return (await this.write(next, stored.version, now)) ? 'renewed' : 'conflict';
  }

  /** Re-reads the backend: the record, and whether it is still ours with our token. */
  async check(): Promise<{ ours: boolean; record: LeaseRecord | undefined }> {
    const stored = await this.backend.read();
    if (stored) this.observe(stored.record, this.now());
    const ours = !!stored && this.isOurs(stored.record);
    if (!ours) this.held = undefined;
    return { ours, record: stored?.record };
  }

  /** Gives the lease up if it is still ours (empty holder, one second), so a successor need not wait. */
  async release(): Promise<boolean> {
    const held = this.held;
    if (!held) return false;
    this.held = undefined;
    const stored = await this.backend.read();
    if (!stored || !this.isOurs(stored.record, held.token)) return false;
    const now = this.now();
    return this.backend.write(
      { ...stored.record, holder: '', durationMs: 1000, renewTime: now },
      stored.version,
    );
  }

  /** Forget the holding without writing (it was lost). */
  drop(): void {
    this.held = undefined;
  }

  private isOurs(record: LeaseRecord, token = this.held?.token): boolean {
    return token !== undefined && record.holder === this.identity && record.token === token;
  }

  private async write(next: LeaseRecord, version: string | undefined, now: number): Promise<boolean> {
    if (!(await this.backend.write(next, version))) return false;
    this.held = next;
    this.lastWriteAt = now;
    this.observed = { record: next, key: fingerprint(next), at: now };
    return true;
  }

  /** Records `record` as seen at `now`; returns the local time since which it has not changed. */
  private observe(record: LeaseRecord, now: number): number {
    const key = fingerprint(record);
    if (this.observed?.key !== key) this.observed = { record, key, at: now };
    return this.observed.at;
  }
}

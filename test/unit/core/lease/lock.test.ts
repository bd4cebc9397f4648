import { describe, expect, it } from 'vitest';
import {
  LeaseLock,
  type LeaseBackend,
  type LeaseRecord,
  type StoredLease,
} from '../../../../core/lease/lock.js';

/** A backend in memory with compare-and-swap on a counter, as a Lease's resourceVersion. */
function memoryBackend(): LeaseBackend & { stored: StoredLease | undefined } {
  return {
    description: 'memory',
    stored: undefined,
    async read() {
      return this.stored && structuredClone(this.stored);
    },
    async write(record: LeaseRecord, version: string | undefined) {
      if (version !== this.stored?.version) return false;
      this.stored = { record: { ...record }, version: String(Number(version ?? 0) + 1) };
      return true;
    },
  };
}

const HOUR = 3_600_000;
const T0 = 1_700_000_000_000;

/** Two processes on one backend, each with its own clock (the holder's may be skewed). */
function pair(holderSkewMs = 0) {
  const backend = memoryBackend();
  let now = T0;
  const tick = (ms: number) => (now += ms);
  const holder = new LeaseLock(backend, { identity: 'a', durationMs: 10_000, now: () => now + holderSkewMs });
  const candidate = new LeaseLock(backend, { identity: 'b', durationMs: 10_000, now: () => now });
  return { backend, holder, candidate, tick };
}

describe('LeaseLock (client-go semantics: expiry as observed on our own clock)', () => {
  it('a fresh lease: created with token 1, acquireTime = renewTime = now', async () => {
    const { backend, holder } = pair();
    expect(await holder.tryAcquire()).toBe(1);
    expect(backend.stored?.record).toEqual({
      holder: 'a',
      token: 1,
      durationMs: 10_000,
      acquireTime: T0,
      renewTime: T0,
    });
  });

  it.each([
    ['no skew', 0],
    ['holder clock 1 h ahead', HOUR],
    ['holder clock 1 h behind', -HOUR],
  ])(
    'held by another and observed changing: never taken; unchanged past its duration: taken with token+1 (%s)',
    async (_, skew) => {
      const { backend, holder, candidate, tick } = pair(skew);
      expect(await holder.tryAcquire()).toBe(1);
      expect(await candidate.tryAcquire()).toBeUndefined(); // first sight: the clock starts now
      for (let i = 0; i < 5; i++) {
        tick(6_000);
        expect(await holder.renew()).toBe('renewed');
        expect(await candidate.tryAcquire()).toBeUndefined(); // 30 s in all, but it kept changing
      }
      tick(9_999);
      expect(await candidate.tryAcquire()).toBeUndefined(); // unchanged for less than its duration
      tick(1);
      expect(await candidate.tryAcquire()).toBe(2);
      expect(backend.stored?.record).toMatchObject({ holder: 'b', token: 2, acquireTime: T0 + 40_000 });
      expect(await holder.renew()).toBe('lost');
      expect(holder.token).toBeUndefined();
    },
  );

  it('renewal keeps acquireTime and the token, and moves renewTime', async () => {
    const { backend, holder, tick } = pair();
    await holder.tryAcquire();
    tick(3_000);
    expect(await holder.renew()).toBe('renewed');
    expect(backend.stored?.record).toMatchObject({ token: 1, acquireTime: T0, renewTime: T0 + 3_000 });
    expect(holder.expired()).toBe(false);
    tick(10_000);
    expect(holder.expired()).toBe(true); // the holder's own view: not renewed within its duration
  });

  it('release frees the lease at once, keeping the token; the next acquisition gets token+1', async () => {
    const { backend, holder, candidate } = pair();
    await holder.tryAcquire();
    expect(await candidate.tryAcquire()).toBeUndefined();
    expect(await holder.release()).toBe(true);
    expect(backend.stored?.record).toMatchObject({ holder: '', token: 1 });
    expect(await candidate.tryAcquire()).toBe(2);
    expect(await holder.release()).toBe(false); // not ours: nothing written
    expect(backend.stored?.record.holder).toBe('b');
  });

  it('a restarted process with the same identity takes its lease at once, fencing the old one', async () => {
    const { backend, holder } = pair();
    await holder.tryAcquire();
    const restarted = new LeaseLock(backend, { identity: 'a', durationMs: 10_000, now: () => T0 });
    expect(await restarted.tryAcquire()).toBe(2);
    expect((await holder.check()).ours).toBe(false);
  });

  it('of two candidates racing on the same version, one wins', async () => {
    const { holder, candidate } = pair();
    const results = await Promise.all([holder.tryAcquire(), candidate.tryAcquire()]);
    expect(results.filter((t) => t !== undefined)).toEqual([1]);
  });
});

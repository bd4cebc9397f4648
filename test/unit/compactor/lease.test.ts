import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import { FencedLease, LeaseLostError } from '../../../core/lease/lease.js';

const path = () => join(mkdtempSync(join(tmpdir(), 'lease-')), 'lease.json');

describe('FencedLease (file backend)', () => {
  it('one holder at a time; each acquisition increments the fencing token', async () => {
    const p = path();
    let now = 1_000_000;
    const clock = () => now;
    const a = new FencedLease(new FileLeaseBackend(p), { identity: 'a', durationMs: 1000, now: clock });
    const b = new FencedLease(new FileLeaseBackend(p), { identity: 'b', durationMs: 1000, now: clock });
    expect(await a.tryAcquire()).toBe(1);
    expect(await b.tryAcquire()).toBeUndefined();
    now += 1001; // a stopped renewing (paused, partitioned): the lease expires
    expect(await b.tryAcquire()).toBe(2);
    // The stale holder's fence check fails (failures 1 and 2 of the original: lost update after lock expiry).
    await expect(a.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
    expect(a.lostSignal.aborted).toBe(true);
    expect(await b.assertHeld()).toBe(2);
    await a.release(); // not ours any more: must not free b's lease
    expect(await b.assertHeld()).toBe(2);
    await b.release();
    expect(await a.tryAcquire()).toBe(3);
    await a.release();
  });

  it('an expired own lease fails the fence even without a successor', async () => {
    let now = 0;
    const a = new FencedLease(new FileLeaseBackend(path()), {
      identity: 'a',
      durationMs: 500,
      now: () => now,
    });
    await a.tryAcquire();
    now = 600;
    await expect(a.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('renewal keeps the lease alive and the token unchanged', async () => {
    const a = new FencedLease(new FileLeaseBackend(path()), {
      identity: 'a',
      durationMs: 300,
      renewEveryMs: 50,
    });
    const token = await a.tryAcquire();
    await new Promise((r) => setTimeout(r, 700));
    expect(await a.assertHeld()).toBe(token);
    await a.release();
  });

  it('concurrent candidates: exactly one wins each round (CAS by link(2) of the next generation)', async () => {
    const p = path();
    const leases = Array.from(
      { length: 8 },
      (_, i) => new FencedLease(new FileLeaseBackend(p), { identity: `c${i}`, durationMs: 60_000 }),
    );
    const results = await Promise.all(leases.map((l) => l.tryAcquire()));
    expect(results.filter((r) => r !== undefined)).toEqual([1]);
    for (const l of leases) await l.release();
  });
});

describe('FileLeaseBackend without a lock file', () => {
  it('a lock file left by a dead process (of an older version) does not hold anyone up', async () => {
    const { writeFileSync } = await import('node:fs');
    const p = path();
    // A pid that cannot be alive (beyond pid_max on Linux).
    writeFileSync(`${p}.lock`, '4194305');
    const a = new FencedLease(new FileLeaseBackend(p), { identity: 'a', durationMs: 1000 });
    const t = Date.now();
    expect(await a.tryAcquire()).toBe(1);
    expect(Date.now() - t).toBeLessThan(1000);
    await a.release();
  });
});

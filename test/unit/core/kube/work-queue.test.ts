import { describe, expect, it } from 'vitest';
import { ExponentialBackoff, MaxOf, TokenBucket, WorkQueue } from '../../../../core/kube/work-queue.js';

describe('WorkQueue', () => {
  it('hands out a key once even when added many times while queued', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.length).toBe(0);
  });

  it('never gives the same key to two workers; an add during processing is queued again on done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('wakes a waiting worker on add, and returns undefined after shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    const after = q.get();
    q.shutdown();
    expect(await after).toBeUndefined();
  });

  it('addAfter keeps the earliest pending delay', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 10_000);
    q.addAfter('k', 20);
    expect(q.pending).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    expect(q.length).toBe(1);
    q.shutdown();
  });

  it('addRateLimited backs off per key exponentially and forget resets it', () => {
    const q = new WorkQueue(new ExponentialBackoff(5, 1000));
    const delays = [1, 2, 3, 4].map(() => q.limiter.when('a'));
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(q.limiter.when('b')).toBe(5);
    q.forget('a');
    expect(q.limiter.when('a')).toBe(5);
    expect(Array.from({ length: 20 }, () => q.limiter.when('c')).at(-1)).toBe(1000);
    q.shutdown();
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then spaces retries at qps', () => {
    let t = 0;
    const b = new TokenBucket(10, 2, () => t);
    expect([b.when(), b.when()]).toEqual([0, 0]);
    expect(b.when()).toBe(100);
    t = 1000;
    expect(b.when()).toBe(0);
  });

  it('MaxOf takes the larger delay', () => {
    const t = 0;
    const m = new MaxOf(new ExponentialBackoff(5, 1000), new TokenBucket(1, 1, () => t));
    expect(m.when('a')).toBe(5);
    expect(m.when('a')).toBe(1000);
    expect(m.retries('a')).toBe(2);
  });
});

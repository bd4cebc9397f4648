import { describe, expect, it } from 'vitest';
import { planDispatch, type Candidate } from '../../../../core/jobs/plan.js';

const c = (name: string, over: Partial<Candidate> = {}): Candidate => ({
  name,
  priority: 0,
  createdAt: 0,
  readyAt: 0,
  attempt: 1,
  isolate: false,
  ...over,
});
const base = { now: 10_000, batchSize: 3, batchWindowMs: 2_000, maxActivePods: 10, activeJobs: 0 };

describe('planDispatch', () => {
  it.each([
    { case: 'full batches go at once', n: 6, now: 10_000, created: 9_999, batches: 2, wake: undefined },
    {
      case: 'a partial batch waits for the window',
      n: 4,
      now: 10_000,
      created: 9_500,
      batches: 1,
      wake: 1_500,
    },
    {
      case: 'a partial batch goes once the window passed',
      n: 4,
      now: 10_000,
      created: 7_000,
      batches: 2,
      wake: undefined,
    },
  ])('$case', ({ n, now, created, batches, wake }) => {
    const candidates = Array.from({ length: n }, (_, i) =>
      c(`ej-${i}`, { createdAt: created, readyAt: created }),
    );
    const plan = planDispatch({ ...base, now, candidates });
    expect(plan.batches).toHaveLength(batches);
    expect(plan.wakeAfterMs).toBe(wake);
  });

  it('orders by priority, then age', () => {
    const plan = planDispatch({
      ...base,
      batchSize: 1,
      candidates: [
        c('old-low', { createdAt: 1 }),
        c('new-high', { priority: 5, createdAt: 9 }),
        c('older-low', { createdAt: 0 }),
      ],
    });
    expect(plan.batches.map((b) => b[0]!.name)).toEqual(['new-high', 'older-low', 'old-low']);
  });

  it('counts unfinished Jobs (Pending pods included) against the cap', () => {
    const candidates = Array.from({ length: 30 }, (_, i) => c(`ej-${i}`));
    const plan = planDispatch({ ...base, candidates, activeJobs: 8 });
    expect(plan.batches).toHaveLength(2);
    expect(plan.waitingForCapacity).toBe(24);
    expect(planDispatch({ ...base, candidates, activeJobs: 12 }).batches).toHaveLength(0);
  });

  it('puts retried items in batches of their own and holds back items still backing off', () => {
    const plan = planDispatch({
      ...base,
      candidates: [
        c('a'),
        c('b'),
        c('retry', { isolate: true, attempt: 2 }),
        c('later', { readyAt: 12_500 }),
      ],
    });
    expect(plan.batches.map((b) => b.map((x) => x.name))).toEqual([['retry'], ['a', 'b']]);
    expect(plan.wakeAfterMs).toBe(2_500);
  });
});

import { describe, expect, it } from 'vitest';
import { bisect, halves, type Failure } from '../../../compactor/bisect.js';

describe('halves of a failing batch', () => {
  it.each([
    { msgs: [1, 2], want: [[1], [2]] },
    { msgs: [1, 2, 3], want: [[1, 2], [3]] },
    {
      msgs: [1, 2, 3, 4],
      want: [
        [1, 2],
        [3, 4],
      ],
    },
    {
      msgs: [1, 2, 3, 4, 5],
      want: [
        [1, 2, 3],
        [4, 5],
      ],
    },
  ])('$msgs → $want', ({ msgs, want }) => {
    expect(halves(msgs)).toEqual(want);
  });
});

/**
 * A fake attempt: a part fails when it holds a message of `bad` (or, with `flaky`, only the very first attempt fails);
 * it records the parts tried, and succeeds with the part's messages.
 */
function world({ bad = [] as number[], flaky = false }) {
  const tried: number[][] = [];
  const attempt = (msgs: number[], first: boolean): Promise<number[] | Failure<number>> => {
    tried.push(msgs);
    const fails = flaky ? first : msgs.some((m) => bad.includes(m));
    return Promise.resolve(fails ? { msgs, err: new Error(`bad in ${msgs.join(',')}`) } : msgs);
  };
  return { tried, attempt };
}

describe('bisecting a failed batch to its culprit', () => {
  it.each([
    {
      name: 'a batch that commits is attempted once',
      msgs: [1, 2, 3, 4],
      bad: [],
      tried: [[1, 2, 3, 4]],
      done: [[1, 2, 3, 4]],
      failed: [],
      narrowed: [],
    },
    {
      name: 'one culprit among 4: its half, then itself; the innocent parts commit',
      msgs: [1, 2, 3, 4],
      bad: [3],
      tried: [[1, 2, 3, 4], [1, 2], [3, 4], [3], [4]],
      done: [[1, 2], [4]],
      failed: [[3]],
      narrowed: [
        [4, 2],
        [2, 1],
      ],
    },
    {
      name: 'one culprit among 5 (the odd one out goes to the first half)',
      msgs: [1, 2, 3, 4, 5],
      bad: [1],
      tried: [[1, 2, 3, 4, 5], [1, 2, 3], [4, 5], [1, 2], [3], [1], [2]],
      done: [[4, 5], [3], [2]],
      failed: [[1]],
      narrowed: [
        [5, 3],
        [3, 2],
        [2, 1],
      ],
    },
    {
      name: 'culprits in both halves: not one message — both go back as they are',
      msgs: [1, 2, 3, 4],
      bad: [1, 4],
      tried: [
        [1, 2, 3, 4],
        [1, 2],
        [3, 4],
      ],
      done: [],
      failed: [
        [1, 2],
        [3, 4],
      ],
      narrowed: [],
    },
    {
      name: 'both culprits in one half: narrowed until they split',
      msgs: [1, 2, 3, 4],
      bad: [1, 2],
      tried: [[1, 2, 3, 4], [1, 2], [3, 4], [1], [2]],
      done: [[3, 4]],
      failed: [[1], [2]],
      narrowed: [[4, 2]],
    },
    {
      name: 'a single message that fails is not bisected',
      msgs: [7],
      bad: [7],
      tried: [[7]],
      done: [],
      failed: [[7]],
      narrowed: [],
    },
  ])('$name', async ({ msgs, bad, tried, done, failed, narrowed: want }) => {
    const w = world({ bad });
    const narrowed: [number, number][] = [];
    const got = await bisect(msgs, w.attempt, (from, to) => narrowed.push([from, to]));
    expect(w.tried).toEqual(tried);
    expect(got.done).toEqual(done);
    expect(got.failures.map((f) => f.msgs)).toEqual(failed);
    // Narrowed (from → to messages) once per level at which exactly one half failed.
    expect(narrowed).toEqual(want);
  });

  it('a failure that does not repeat settles nothing: both halves commit', async () => {
    const w = world({ flaky: true });
    const got = await bisect([1, 2, 3], w.attempt);
    expect(w.tried).toEqual([[1, 2, 3], [1, 2], [3]]);
    expect(got).toEqual({ done: [[1, 2], [3]], failures: [] });
  });

  it('only the whole batch is attempted as `first`; the failure carries what the attempt returned', async () => {
    const firsts: boolean[] = [];
    const err = new Error('boom');
    const got = await bisect([1, 2], (msgs, first) => {
      firsts.push(first);
      // The attempt may return fewer messages than it was given (some settled meanwhile).
      return Promise.resolve(first ? { msgs: [2], err } : { msgs, err });
    });
    expect(firsts).toEqual([true]);
    expect(got).toEqual({ done: [], failures: [{ msgs: [2], err }] });
  });
});

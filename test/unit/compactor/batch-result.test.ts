import { describe, expect, it } from 'vitest';
import {
  changedAnything,
  emptyResult,
  sumResults,
  type BatchResult,
} from '../../../compactor/batch-result.js';

const r = (over: Partial<BatchResult>): BatchResult => ({ ...emptyResult(0), ...over });

describe('batch results', () => {
  it('an empty result counts only its messages', () => {
    expect(emptyResult(3)).toEqual({
      messages: 3,
      completed: 0,
      failed: 0,
      deadLettered: 0,
      added: 0,
      replaced: 0,
      updated: 0,
      unchanged: 0,
      deleted: 0,
      groups: 0,
    });
  });

  it.each<{ name: string; parts: BatchResult[]; want: BatchResult }>([
    { name: 'nothing sums to zero', parts: [], want: emptyResult(0) },
    {
      name: 'counts add up',
      parts: [
        r({ messages: 2, added: 3, groups: 1 }),
        r({ messages: 1, deleted: 4, deadLettered: 1, groups: 2 }),
      ],
      want: r({ messages: 3, added: 3, deleted: 4, deadLettered: 1, groups: 3 }),
    },
    {
      name: 'the version published is the last one published',
      parts: [r({ published: 'v1' }), r({ completed: 1 }), r({ published: 'v2' }), r({ failed: 1 })],
      want: r({ published: 'v2', completed: 1, failed: 1 }),
    },
    { name: 'no publish, no published key', parts: [r({ unchanged: 5 })], want: r({ unchanged: 5 }) },
  ])('$name', ({ parts, want }) => {
    const got = sumResults(parts);
    expect(got).toEqual(want);
    if (!want.published) expect('published' in got).toBe(false);
  });

  it.each<{ counts: Partial<BatchResult>; want: boolean }>([
    { counts: {}, want: false },
    {
      counts: { unchanged: 9, completed: 2, failed: 1, deadLettered: 1, messages: 4, groups: 1 },
      want: false,
    },
    { counts: { deleted: 1 }, want: true },
    { counts: { added: 1 }, want: true },
    { counts: { replaced: 1 }, want: true },
    { counts: { updated: 1 }, want: true },
  ])('a publish is needed after $counts: $want', ({ counts, want }) => {
    expect(changedAnything(r(counts))).toBe(want);
  });
});

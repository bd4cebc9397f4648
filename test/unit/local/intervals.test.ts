import { describe, expect, it } from 'vitest';
import { overheadBreakdown, unionIntervals, unionMs } from '../../../local/intervals.js';

describe('work intervals', () => {
  it('unions overlapping intervals once', () => {
    expect(
      unionMs([
        [0, 10],
        [5, 15],
        [20, 30],
        [30, 31],
      ]),
    ).toBe(26);
    expect(
      unionIntervals([
        [20, 30],
        [0, 10],
        [5, 15],
        [30, 31],
      ]),
    ).toEqual([
      [0, 15],
      [20, 31],
    ]);
  });

  it('splits the time outside work into before the first, gaps (publishing or not) and after the last', () => {
    const b = overheadBreakdown(
      [
        [100, 200],
        [150, 300],
        [400, 500],
        [600, 900],
      ],
      0,
      1000,
      [
        [250, 350],
        [550, 650],
        [950, 990],
      ],
    );
    // gaps: 300–400 (50 of it publishing) and 500–600 (50 publishing); the publish after the last work is tail
    expect(b).toEqual({ beforeFirstMs: 100, gapsMs: 200, gapsPublishingMs: 100, afterLastMs: 100 });
    expect(b.beforeFirstMs + b.gapsMs + b.afterLastMs).toBe(
      1000 -
        unionMs([
          [100, 300],
          [400, 500],
          [600, 900],
        ]),
    );
  });

  it('counts the whole run as before the first work when nothing worked', () => {
    expect(overheadBreakdown([], 0, 500)).toEqual({
      beforeFirstMs: 500,
      gapsMs: 0,
      gapsPublishingMs: 0,
      afterLastMs: 0,
    });
  });
});

import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../../core/backoff.js';

describe('backoffMs', () => {
  const p = { baseMs: 100, maxMs: 1000 };
  it('doubles from baseMs and stops at maxMs', () => {
    const top = () => 0; // no jitter taken off
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffMs(a, p, top))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it('takes at most `jitter` of the delay off', () => {
    expect(backoffMs(3, p, () => 1)).toBe(640);
    expect(backoffMs(3, { ...p, jitter: 0.5 }, () => 1)).toBe(400);
    expect(backoffMs(3, { ...p, jitter: 0 }, () => 1)).toBe(800);
  });
  it('treats a negative attempt as the first', () => {
    expect(backoffMs(-2, p, () => 0)).toBe(100);
  });
});

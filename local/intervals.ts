/** [start, end] in ms since the epoch: comparable across processes. */
export type Interval = [number, number];

/** Total length of the union of intervals (overlaps counted once). */
export function unionMs(intervals: Interval[]): number {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let cur: Interval | undefined;
  for (const [a, b] of sorted) {
    if (!cur || a > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [a, b];
    } else cur[1] = Math.max(cur[1], b);
  }
  return cur ? total + cur[1] - cur[0] : total;
}

/** Records busy intervals of an activity that may run several times at once (busy while at least one runs). */
export class BusyRecorder {
  readonly intervals: Interval[] = [];
  private inflight = 0;
  private since = 0;

  async time<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inflight++ === 0) this.since = Date.now();
    try {
      return await fn();
    } finally {
      if (--this.inflight === 0) this.intervals.push([this.since, Date.now()]);
    }
  }

  get busyMs(): number {
    return unionMs(this.intervals);
  }
}

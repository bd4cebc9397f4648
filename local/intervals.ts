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

/** Where the time outside `work` went, within [start, end]. */
export interface OverheadBreakdown {
  /** From the start to the first work interval (process start-up, submit, the first worker batch). */
  beforeFirstMs: number;
  /** Between the first and the last work interval with nothing in progress. */
  gapsMs: number;
  /** The part of `gapsMs` in which a compactor lane was publishing. */
  gapsPublishingMs: number;
  /** From the end of the last work interval to the end (the last publish, shutdown). */
  afterLastMs: number;
}

export function overheadBreakdown(
  work: Interval[],
  start: number,
  end: number,
  publishing: Interval[] = [],
): OverheadBreakdown {
  const clipped = work
    .map(([a, b]): Interval => [Math.max(a, start), Math.min(b, end)])
    .filter(([a, b]) => b > a);
  if (clipped.length === 0)
    return { beforeFirstMs: end - start, gapsMs: 0, gapsPublishingMs: 0, afterLastMs: 0 };
  const first = Math.min(...clipped.map(([a]) => a));
  const last = Math.max(...clipped.map(([, b]) => b));
  const gaps = complement(clipped, first, last);
  const gapsMs = gaps.reduce((s, [a, b]) => s + b - a, 0);
  const pub = unionIntervals(publishing);
  let gapsPublishingMs = 0;
  for (const [a, b] of gaps)
    for (const [c, d] of pub) gapsPublishingMs += Math.max(0, Math.min(b, d) - Math.max(a, c));
  return { beforeFirstMs: first - start, gapsMs, gapsPublishingMs, afterLastMs: end - last };
}

/** The union of intervals as disjoint sorted intervals. */
export function unionIntervals(intervals: Interval[]): Interval[] {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [a, b] of sorted) {
    const cur = out.at(-1);
    if (!cur || a > cur[1]) out.push([a, b]);
    else cur[1] = Math.max(cur[1], b);
  }
  return out;
}

/** The parts of [start, end] not covered by the intervals. */
function complement(intervals: Interval[], start: number, end: number): Interval[] {
  const out: Interval[] = [];
  let at = start;
  for (const [a, b] of unionIntervals(intervals)) {
    if (a > at) out.push([at, Math.min(a, end)]);
    at = Math.max(at, b);
    if (at >= end) break;
  }
  if (at < end) out.push([at, end]);
  return out;
}

/** The steps of an item the batch summary times (`BatchOutcome.phaseMs`, read by bench/worker.ts and the logs). */
export type Phase =
  'openIndex' | 'read' | 'embed' | 'indexWait' | 'merchant' | 'writeWait' | 'upload' | 'ledger' | 'report';

/** A semaphore's `run`: calls `fn` once a slot is free. */
export type Gate = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Where a batch's time goes, observed from outside the steps: per phase, the milliseconds summed over items (items
 * overlap, so the sums exceed the batch's wall time) and the span from the first start to the last end, in ms since
 * the batch started. The pipeline wraps a step in `timed` (or a gate in `gated`); nothing passes the figures around.
 */
export class PhaseTimer {
  private readonly totals: Partial<Record<Phase, number>> = {};
  private readonly spans: Partial<Record<Phase, [number, number]>> = {};

  constructor(private readonly t0: number) {}

  /** Runs `fn`, counting its time (until it settles) under `phase`. */
  async timed<T>(phase: Phase, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.record(phase, start);
    }
  }

  /** Runs `fn` through `gate`, counting the wait for the gate (not `fn` itself) under `phase`. */
  gated<T>(phase: Phase, gate: Gate, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    return gate(() => {
      this.record(phase, start);
      return fn();
    });
  }

  /** The figures in whole milliseconds, as the batch reports them. */
  figures(): { phaseMs: Record<string, number>; phaseSpanMs: Record<string, [number, number]> } {
    return {
      phaseMs: Object.fromEntries(Object.entries(this.totals).map(([k, v]) => [k, Math.round(v)])),
      phaseSpanMs: Object.fromEntries(
        Object.entries(this.spans).map(([k, [a, b]]) => [
          k,
          [Math.round(a), Math.round(b)] as [number, number],
        ]),
      ),
    };
  }

  private record(phase: Phase, start: number): void {
    const end = performance.now();
    this.totals[phase] = (this.totals[phase] ?? 0) + (end - start);
    const from = start - this.t0;
    const to = end - this.t0;
    const span = (this.spans[phase] ??= [from, to]);
    span[0] = Math.min(span[0], from);
    span[1] = Math.max(span[1], to);
  }
}

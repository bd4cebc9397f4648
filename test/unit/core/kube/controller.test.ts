// The reconcile contract of core/kube/controller.ts, one row per outcome: what a reconciler returns or throws
// decides whether the key is retried with backoff, looked at again later, or dropped — and what is counted.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  Controller,
  TerminalError,
  type ReconcileContext,
  type ReconcileResult,
} from '../../../../core/kube/controller.js';
import { KubeMetrics } from '../../../../core/kube/metrics.js';
import { KubeApiError } from '../../../../core/kube/rest.js';
import type { RateLimiter } from '../../../../core/kube/work-queue.js';
import { createLogger } from '../../../../core/log.js';

/** A rate limiter that records its calls and retries at once, so a test sees the decision, not the delay. */
class RecordingLimiter implements RateLimiter {
  readonly whens: string[] = [];
  readonly forgets: string[] = [];
  when(key: string): number {
    this.whens.push(key);
    return 1;
  }
  forget(key: string): void {
    this.forgets.push(key);
  }
  retries(key: string): number {
    return this.whens.filter((k) => k === key).length;
  }
}

type Step = (ctx: ReconcileContext) => Promise<ReconcileResult | void>;
const ok: Step = async () => ({});
const fail: Step = async () => {
  throw new Error('apiserver unavailable');
};
const terminal: Step = async () => {
  throw new TerminalError('spec can never work');
};
const conflict: Step = async () => {
  throw new KubeApiError(409, 'Conflict', 'the object has been modified');
};
const requeueAfter: Step = async () => ({ requeueAfterMs: 20 });
/** Never settles on its own; ends only when the controller aborts it. */
const hang: Step = (ctx) =>
  new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));

interface Row {
  name: string;
  /** Outcome of the 1st, 2nd, … reconcile of the key; the last one repeats. */
  steps: Step[];
  reconciles: number;
  /** Rate-limited re-adds (the per-key backoff was consulted). */
  backoffs: number;
  results: Partial<Record<'success' | 'error' | 'requeue_after', number>>;
  errors: number;
  terminal: number;
}

const rows: Row[] = [
  {
    name: 'success: done, backoff forgotten, not retried',
    steps: [ok],
    reconciles: 1,
    backoffs: 0,
    results: { success: 1 },
    errors: 0,
    terminal: 0,
  },
  {
    name: 'error: retried with backoff until it succeeds',
    steps: [fail, fail, ok],
    reconciles: 3,
    backoffs: 2,
    results: { error: 2, success: 1 },
    errors: 2,
    terminal: 0,
  },
  {
    name: 'TerminalError: recorded once, never retried',
    steps: [terminal],
    reconciles: 1,
    backoffs: 0,
    results: { error: 1 },
    errors: 0,
    terminal: 1,
  },
  {
    name: 'conflict (409): retried with backoff, not counted as a reconcile error',
    steps: [conflict, ok],
    reconciles: 2,
    backoffs: 1,
    results: { error: 1, success: 1 },
    errors: 0,
    terminal: 0,
  },
  {
    name: 'requeueAfterMs: looked at again later, not an error and no backoff',
    steps: [requeueAfter, ok],
    reconciles: 2,
    backoffs: 0,
    results: { requeue_after: 1, success: 1 },
    errors: 0,
    terminal: 0,
  },
  {
    name: 'timeout: the reconcile is aborted and retried with backoff',
    steps: [hang, ok],
    reconciles: 2,
    backoffs: 1,
    results: { error: 1, success: 1 },
    errors: 1,
    terminal: 0,
  },
];

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('Controller: the three-way reconcile contract', () => {
  it.each(rows)('$name', async (row) => {
    const limiter = new RecordingLimiter();
    const registry = new Registry();
    let calls = 0;
    let aborted = false;
    const c = new Controller({
      name: 'test',
      concurrency: 1,
      timeoutMs: 50,
      rateLimiter: limiter,
      log: createLogger('test', 'silent'),
      metrics: new KubeMetrics(registry),
      reconcile: async (key, ctx) => {
        expect(key).toBe('ns/a');
        ctx.signal.addEventListener('abort', () => (aborted = true));
        const step = row.steps[Math.min(calls, row.steps.length - 1)]!;
        calls++;
        return step(ctx);
      },
    });
    const stop = new AbortController();
    const running = c.start(stop.signal);
    c.enqueue('ns/a');
    // Settled: the expected reconciles ran, and nothing more comes within a further quiet period.
    for (let waited = 0; calls < row.reconciles && waited < 2_000; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 100));
    stop.abort();
    await running;

    expect(calls).toBe(row.reconciles);
    expect(limiter.whens.length).toBe(row.backoffs);
    expect(limiter.forgets).toContain('ns/a'); // every row ends in success or a terminal error
    expect(aborted).toBe(row.steps.includes(hang));
    for (const result of ['success', 'error', 'requeue_after'] as const) {
      expect(
        await counter(registry, 'controller_runtime_reconcile_total', { controller: 'test', result }),
        result,
      ).toBe(row.results[result] ?? 0);
    }
    expect(await counter(registry, 'controller_runtime_reconcile_errors_total', { controller: 'test' })).toBe(
      row.errors,
    );
    expect(
      await counter(registry, 'controller_runtime_terminal_reconcile_errors_total', { controller: 'test' }),
    ).toBe(row.terminal);
  });

  it('its result, error and worker series exist at 0 from construction (controller-runtime initMetrics), so error panels read 0, not nothing', async () => {
    const registry = new Registry();
    new Controller({
      name: 'fresh',
      log: createLogger('test', 'silent'),
      metrics: new KubeMetrics(registry),
      reconcile: () => Promise.resolve(),
    });
    const text = await registry.metrics();
    for (const line of [
      'controller_runtime_reconcile_total{controller="fresh",result="success"} 0',
      'controller_runtime_reconcile_total{controller="fresh",result="error"} 0',
      'controller_runtime_reconcile_total{controller="fresh",result="requeue_after"} 0',
      'controller_runtime_reconcile_errors_total{controller="fresh"} 0',
      'controller_runtime_terminal_reconcile_errors_total{controller="fresh"} 0',
      'controller_runtime_active_workers{controller="fresh"} 0',
    ])
      expect(text.split('\n')).toContain(line);
  });

  it('when stopped, waits for the reconcile in flight and drains keys already queued (client-go), then resolves', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const started: string[] = [];
    const c = new Controller({
      name: 'stop',
      concurrency: 1,
      log: createLogger('test', 'silent'),
      reconcile: async (key) => {
        started.push(key);
        await gate;
        return {};
      },
    });
    const stop = new AbortController();
    const running = c.start(stop.signal);
    c.enqueue('a');
    c.enqueue('b');
    while (started.length === 0) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    let done = false;
    void running.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(started).toEqual(['a']);
    open();
    await running;
    expect(started).toEqual(['a', 'b']);
  });
});

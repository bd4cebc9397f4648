import type { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../core/backoff.js';
import { processEnv, type Env } from '../core/config/env.js';
import { parseStreamEnv } from '../core/config/stream.js';
import type { Kube } from '../core/kube/rest.js';
import type { Logger } from '../core/log.js';
import { pendingRunSweeperFromEnv, streamProcessorFromEnv } from './from-env.js';
import { StreamMetrics } from './metrics.js';

/**
 * The stream processor as a leader-only runnable for the controller's manager:
 *
 *   manager.addLeaderRunnable('stream-processor', streamProcessorRunnable({ log, registry, kube }));
 *
 * Runs while this replica leads; resolves promptly after `signal` aborts (the last uncommitted batch is replayed by
 * the next leader). Set-up failures (table not there yet, …) are retried, never fatal to the controller.
 * `STREAM_PROCESSOR=off` disables it (e.g. when the stream processor runs elsewhere).
 *
 * The checkpoint store writes only while this replica leads: it gets the leader signal and `isLeader` (pass the
 * manager's: `isLeader: () => manager.isLeader()`), so a deposed replica writes nothing. Beside the processor runs
 * the pending-run sweeper (`stream/sweeper.ts`, `STREAM_SWEEP_INTERVAL_MS`, 0 = off), on the same signal.
 */
export function streamProcessorRunnable(opts: {
  log: Logger;
  registry?: Registry;
  /** The controller's client: checkpoints and job status go through it. */
  kube: Kube;
  env?: Env;
  /** This replica still leads (the manager's `isLeader`); checked before every checkpoint write. */
  isLeader?: () => boolean;
}): (signal: AbortSignal) => Promise<void> {
  const env = opts.env ?? processEnv();
  // Once per runnable: a restarted processor (after a failed start) counts on.
  const metrics = new StreamMetrics(opts.registry);
  return async (signal) => {
    if (!parseStreamEnv(env).enabled) return void (await waitAbort(signal));
    const log = opts.log.child({ component: 'stream' });
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const processor = await streamProcessorFromEnv({
          env,
          log,
          metrics,
          kube: opts.kube,
          leader: { signal, ...(opts.isLeader ? { isLeader: opts.isLeader } : {}) },
        });
        const sweeper = pendingRunSweeperFromEnv({
          env,
          log: log.child({ component: 'sweeper' }),
          metrics,
        });
        // The sweeper stops with the processor: a processor that stopped (deposed) must not go on sending.
        const stopSweeper = new AbortController();
        await Promise.all([
          processor.run(signal).finally(() => stopSweeper.abort()),
          sweeper?.run(AbortSignal.any([signal, stopSweeper.signal])),
        ]);
        return;
      } catch (err) {
        if (signal.aborted) return;
        log.error({ err, attempt }, 'stream processor could not start; retrying');
        await sleep(backoffMs(attempt, { baseMs: 1000, maxMs: 30_000 }), undefined, { signal }).catch(
          () => undefined,
        );
      }
    }
  };
}

function waitAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

import { join } from 'node:path';
import { FileLeaseBackend } from '../core/lease/file-lease.js';
import { FencedLease, LeaseLostError } from '../core/lease/lease.js';
import { Compactor } from '../compactor/compactor.js';
import { CompactorMetrics } from '../compactor/metrics.js';
import { processEnv } from '../core/config/env.js';
import { EXIT } from '../core/config/exit-codes.js';
import { crashHooksFromEnv } from '../core/testing/crash-points.js';
import type { Interval } from './intervals.js';
import { localLogger } from './log.js';
import { LOCAL_KEEP_VERSIONS, openLocal, VECTORS_BUCKET } from './home.js';

/** What the compactor child prints as its last stdout line, for the runner's per-stage times. */
export interface CompactorChildStats {
  /** Time applying batches to the working copy (delta reads + Chroma writes), ms, summed over both lanes. */
  mergeMs: number;
  /** The same per collection: the two lanes run concurrently. */
  mergeMsByCollection: Record<string, number>;
  /** When a lane was merging (both lanes), for the runner's overhead figure. */
  mergeIntervals: Interval[];
  /** The same and the publishes, per lane: where the lanes spend the run (the summary's overhead breakdown). */
  laneIntervals: Record<string, { merge: Interval[]; publish: Interval[] }>;
  /** Time publishing versions (stop, copy, validate, switch CURRENT), ms. */
  publishMs: number;
  publishes: number;
}

/**
 * The local compactor: the project's Compactor over the local ports, fenced by a file lease in the home directory
 * (so `snapshot restore` and a second runner never interleave with it). Runs until SIGTERM, or with `once` until
 * both queues have been empty for a moment. Exit codes as `embedctl compactor` (core/config/exit-codes.ts).
 */
export async function runCompactorChild(opts: {
  home?: string;
  once: boolean;
}): Promise<{ code: number; stats: CompactorChildStats }> {
  const log = localLogger('compactor');
  const ports = openLocal(opts.home);
  const lease = new FencedLease(new FileLeaseBackend(ports.paths.lease), {
    identity: `local-${process.pid}`,
    // Short: after a crash the next run's compactor waits at most this long for the dead holder's lease.
    durationMs: 5_000,
    log,
  });
  const metrics = new CompactorMetrics();
  const compactor = new Compactor({
    metrics,
    hooks: crashHooksFromEnv(processEnv()),
    queues: { lines: ports.queues.lines, words: ports.queues.words },
    ledger: ports.ledger,
    objects: ports.store,
    bucket: VECTORS_BUCKET,
    lease,
    root: ports.paths.volume,
    workRoot: join(ports.paths.scratch, 'compactor'),
    log,
    config: {
      // Small batches, published quickly: one machine, interactive use.
      waitSeconds: 1,
      // A short window: workers deliver in bursts (one batch's receipts within about a second) and a backlog forms
      // while a lane merges and publishes, so a lane takes what is queued and starts merging at once. A longer
      // window (2 s) made fewer publishes but left each lane idle for the whole window before every batch,
      // including the first and the last one (docs/local.md, Measured).
      batchWindowMs: 150,
      // …and while runs keep arriving, a lane merges what is queued before one publish covers it all: every publish
      // stops the lane's Chroma server. `lines` publishes within 3 s, since workers resolve merchants against it.
      // Nothing reads `words` during a run, and it is three quarters of the vectors: with 3 s it published in the
      // middle of its backlog, when the other lane had nothing left to merge and nothing counted as work for up to
      // 1.6 s; with 15 s the overhead share was lower in three alternating pairs (0.14-0.17 vs 0.17-0.20).
      publishHoldMs: { lines: 3000, words: 15_000 },
      // Disk: a version is a full Chroma directory (60-70 MB for a few hundred receipts). Local mode keeps CURRENT and
      // the one before it (the mirror keeps 4 archives besides), and prunes again at a clean shutdown with a short
      // grace, so a run does not leave its last minute of publishes behind (docs/local.md, "Disk").
      keepVersions: LOCAL_KEEP_VERSIONS,
      graceMs: 60_000,
      shutdownGraceMs: 2000,
      s3EveryPublishes: 1,
      ...(opts.once ? { exitWhenIdleMs: 1500 } : {}),
    },
  });
  const lanes: CompactorChildStats['laneIntervals'] = {};
  const lane = (c: string) => (lanes[c] ??= { merge: [], publish: [] });
  recordIntervals(metrics.mergeSeconds, (c, i) => lane(c).merge.push(i));
  recordIntervals(metrics.publishSeconds, (c, i) => lane(c).publish.push(i));
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let code: number;
  try {
    await compactor.run(controller.signal);
    code = EXIT.ok;
  } catch (err) {
    if (err instanceof LeaseLostError || lease.lostSignal.aborted) {
      log.error({ err }, 'compactor lease lost');
      code = EXIT.leaseLost;
    } else if (controller.signal.aborted) code = EXIT.ok;
    else {
      log.error({ err }, 'compactor failed');
      code = EXIT.failed;
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    ports.close();
  }
  const mergeIntervals = Object.values(lanes).flatMap((l) => l.merge);
  return { code, stats: { ...(await stats(metrics)), mergeIntervals, laneIntervals: lanes } };
}

/**
 * The compactor observes its merge (and publish) time per batch when the merge (publish) ends; that observation is
 * also when the interval ends, so wrapping it yields the intervals without touching the compactor.
 */
function recordIntervals(
  histogram: CompactorMetrics['mergeSeconds'],
  record: (collection: string, interval: Interval) => void,
): void {
  // The compactor calls observe({ collection }, seconds).
  type Observe = (labels: Record<string, string>, seconds: number) => void;
  const h = histogram as unknown as { observe: Observe };
  const observe = h.observe.bind(h);
  h.observe = (labels, seconds) => {
    const end = Date.now();
    record(String(labels.collection), [end - seconds * 1000, end]);
    observe(labels, seconds);
  };
}

async function stats(
  metrics: CompactorMetrics,
): Promise<Omit<CompactorChildStats, 'mergeIntervals' | 'laneIntervals'>> {
  type Histogram = CompactorMetrics['mergeSeconds'];
  const sums = async (h: Histogram) => (await h.get()).values.filter((v) => v.metricName?.endsWith('_sum'));
  const sum = async (h: Histogram) => (await sums(h)).reduce((s, v) => s + v.value, 0) * 1000;
  const count = (await metrics.publishes.get()).values.reduce((s, v) => s + v.value, 0);
  return {
    mergeMs: Math.round(await sum(metrics.mergeSeconds)),
    mergeMsByCollection: Object.fromEntries(
      (await sums(metrics.mergeSeconds)).map((v) => [
        String(v.labels.collection),
        Math.round(v.value * 1000),
      ]),
    ),
    publishMs: Math.round(await sum(metrics.publishSeconds)),
    publishes: count,
  };
}

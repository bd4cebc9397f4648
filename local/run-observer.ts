import type { LaunchResult } from '../core/local/launcher.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { CompactorChildStats } from './compactor-child.js';
import type { LocalPorts } from './home.js';
import { overheadBreakdown, unionMs, type Interval } from './intervals.js';
import { parseStats } from './log.js';
import { summarize, type RunSummary, type StageTime } from './run-summary.js';
import type { WorkerChildStats } from './worker-child.js';

/** Stages whose wall time runs from `start` to `end`. */
type Span = 'compactor' | 'submit' | 'stream' | 'workers' | 'compactWait';

/**
 * The time figures of one `embedctl local run`: the run says when its steps start and end and what its children
 * printed (local/run.ts), this observer turns that into the summary's stage times, worker counts and overhead
 * share. Stages overlap (the pipeline streams), so each is timed on its own.
 */
export class RunObserver {
  private readonly t0 = performance.now();
  /** The run's start on the epoch clock, which the children's intervals use. */
  private readonly epoch0 = Date.now();
  private readonly stages: Record<string, StageTime> = {};
  private readonly started = new Map<Span, number>();
  private readonly workerStats: WorkerChildStats[] = [];
  private readonly workers: RunSummary['workers'] = { launched: 0, failed: 0 };
  private compactorStats: CompactorChildStats | undefined;

  start(stage: Span): void {
    this.started.set(stage, performance.now());
  }

  /** `fn`'s wall time, added to the stage's: a stage run in parts (ingest, once per wave) sums them. */
  async timed<T>(stage: 'childBuild' | 'ingest', fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    const result = await fn();
    this.stages[stage] = { wallMs: (this.stages[stage]?.wallMs ?? 0) + performance.now() - t };
    return result;
  }

  /** Every wave is submitted and ingested: submit's own time is the feed's, ingest's excluded. */
  feedDone(): void {
    const wallMs = performance.now() - this.since('submit') - (this.stages.ingest?.wallMs ?? 0);
    this.stages.submit = { wallMs: Math.max(0, wallMs) };
  }

  workerLaunched(): void {
    this.workers.launched++;
  }

  /** A worker process exited: its figures (printed on stdout) count towards the embedding stage. */
  workerFinished(res: LaunchResult): void {
    if (res.reason !== 'Completed') this.workers.failed++;
    const stats = parseStats<WorkerChildStats>(res.stdout);
    if (stats) this.workerStats.push(stats);
  }

  /** Dispatch is over. Inside the workers: wall = the longest one worker spent embedding, busy = summed over workers. */
  workersDone(): void {
    this.end('workers', sum(this.workerStats.map((w) => w.durationMs)));
    const embed = this.workerStats.map((w) => w.embedMs);
    this.stages.embedding = { wallMs: Math.max(0, ...embed), busyMs: sum(embed) };
  }

  end(stage: Span, busyMs?: number): void {
    this.stages[stage] = {
      wallMs: performance.now() - this.since(stage),
      ...(busyMs === undefined ? {} : { busyMs }),
    };
  }

  /** The compactor child is stopped: the figures of every instance of it that printed them (a killed one prints none). */
  compactorDone(runs: LaunchResult[]): void {
    const stats = mergeCompactorStats(runs.flatMap((r) => parseStats<CompactorChildStats>(r.stdout) ?? []));
    this.compactorStats = stats;
    this.end('compactor', stats ? stats.mergeMs + stats.publishMs : undefined);
    if (stats) {
      // Lanes run concurrently: the longer lane is the wall time, the sum the busy time.
      const lanes = Object.values(stats.mergeMsByCollection);
      this.stages.chromaWrites = { wallMs: lanes.length ? Math.max(...lanes) : 0, busyMs: stats.mergeMs };
      this.stages.publish = { wallMs: stats.publishMs, busyMs: stats.publishMs };
    }
  }

  /**
   * The run's summary (local/run-summary.ts) with what was observed: stage times, workers, the total, and the share of
   * the run (summary excluded) in which neither embedding (any worker) nor a Chroma merge (either lane) was going on.
   */
  async summary(
    ports: LocalPorts,
    embedder: Embedder,
    x: Omit<Parameters<typeof summarize>[2], 'stages' | 'workers'>,
  ): Promise<RunSummary> {
    const t = performance.now();
    const summary = await summarize(ports, embedder, {
      ...x,
      stages: this.stages,
      workers: { ...this.workers },
    });
    this.stages.summary = { wallMs: performance.now() - t };
    summary.totalMs = performance.now() - this.t0;
    const runMs = summary.totalMs - this.stages.summary.wallMs;
    const work: Interval[] = [
      ...this.workerStats.flatMap((w) => w.embedIntervals),
      ...(this.compactorStats?.mergeIntervals ?? []),
    ];
    const workMs = unionMs(work);
    summary.overhead = {
      workMs,
      share: runMs > 0 ? Math.max(0, 1 - workMs / runMs) : 0,
      breakdown: overheadBreakdown(
        work,
        this.epoch0,
        this.epoch0 + runMs,
        Object.values(this.compactorStats?.laneIntervals ?? {}).flatMap((l) => l.publish),
      ),
    };
    return summary;
  }

  private since(stage: Span): number {
    const t = this.started.get(stage);
    if (t === undefined) throw new Error(`stage ${stage} ended before it started`);
    return t;
  }
}

const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);

/** The figures of every compactor instance of the run, added up (one instance unless it was restarted). */
function mergeCompactorStats(all: CompactorChildStats[]): CompactorChildStats | undefined {
  if (all.length <= 1) return all[0];
  const out: CompactorChildStats = {
    mergeMs: 0,
    mergeMsByCollection: {},
    mergeIntervals: [],
    laneIntervals: {},
    publishMs: 0,
    publishes: 0,
  };
  for (const s of all) {
    out.mergeMs += s.mergeMs;
    out.publishMs += s.publishMs;
    out.publishes += s.publishes;
    out.mergeIntervals.push(...s.mergeIntervals);
    for (const [c, ms] of Object.entries(s.mergeMsByCollection))
      out.mergeMsByCollection[c] = (out.mergeMsByCollection[c] ?? 0) + ms;
    for (const [c, l] of Object.entries(s.laneIntervals)) {
      const lane = (out.laneIntervals[c] ??= { merge: [], publish: [] });
      lane.merge.push(...l.merge);
      lane.publish.push(...l.publish);
    }
  }
  return out;
}

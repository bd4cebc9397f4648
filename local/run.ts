import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { similarity } from '../core/chroma/store.js';
import { embeddingJobName } from '../core/contracts/embedding-job.js';
import { parseVectorId, type Collection } from '../core/contracts/ids.js';
import { errorMessage, UsageError } from '../core/errors.js';
import { ExponentialBackoff } from '../core/kube/work-queue.js';
import { ProcessLauncher, type LaunchResult } from '../core/local/launcher.js';
import type { LocalJob } from '../core/local/job-table.js';
import type { Logger } from '../core/log.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { QueryHit } from '../core/ports/vector-store.js';
import { artifactKeys, generateReceipts, type GeneratedReceipt } from '../core/sample/index.js';
import { StreamProcessor } from '../stream/processor.js';
import { ARTIFACTS_BUCKET, embedderFromEnv, lockHome, openLocal, type LocalPorts } from './home.js';
import { readInputFolder, submitReceipts, type InputReceipt, type Rejected } from './input.js';
import {
  dispatchAll,
  firstWaveSize,
  ingestAll,
  LocalJobStatusSink,
  recoverClaims,
  type IngestStats,
} from './loop.js';
import { overheadBreakdown, unionMs, type OverheadBreakdown } from './intervals.js';
import { fastChildEntry } from './child-bundle.js';
import { reapLocalChildren } from './child-argv.js';
import { localChildEnv } from './child-env.js';
import { parseStats } from './log.js';
import { Progress } from './progress.js';
import { openSnapshotView } from './snapshot-view.js';
import type { WorkerChildStats } from './worker-child.js';
import type { CompactorChildStats } from './compactor-child.js';
import { ENV, processEnv } from '../core/config/env.js';

export interface RunOptions {
  home?: string;
  receipts: number;
  seed: number;
  input?: string;
  concurrency: number;
  batchSize: number;
  maxAttempts: number;
  places: boolean;
  timeoutMs: number;
  /** Run the similarity queries of the summary. */
  queries: boolean;
  /** How a child process is started (local/child-main with this process's node and loader flags). */
  self: { command: string; args: string[] };
  log: Logger;
  progress: boolean;
}

export interface StageTime {
  /** Wall-clock time from the stage's start to its end (stages overlap: the pipeline streams). */
  wallMs: number;
  /** Time actually working, where known (summed over workers for embedding). */
  busyMs?: number;
}

export interface RunSummary {
  home: string;
  embedder: { model: string; dimensions: number; kind: 'local-lexical' | 'openai' };
  /** Receipts uploaded and queued by this run. */
  submitted: number;
  /** Receipts of this run's input that were neither uploaded nor queued again: same content, job already there. */
  skipped: { done: number; queued: number };
  /** Every receipt of the home, plus those of this run's input rejected while the folder was read (as failed). */
  receipts: { total: number; succeeded: number; failed: number };
  vectors: Record<Collection, { snapshot: number; expected: number }>;
  merchants: { resolved: number; unresolved: number; byName: Record<string, number> };
  failures: { source: string; reason: string; message: string }[];
  deadLetters: { queue: string; reason: string; body: string }[];
  snapshot: Partial<Record<Collection, string>>;
  stages: Record<string, StageTime>;
  workers: { launched: number; failed: number };
  /** The compactor child: restarted after an unexpected exit (with backoff, at most COMPACTOR_MAX_RESTARTS times). */
  compactor: { restarts: number; lastExit?: string };
  queries: {
    title: string;
    collection: Collection;
    hits: { id: string; similarity: number; text: string | null; merchant?: string }[];
  }[];
  /**
   * Time in which embedding (any worker) or a Chroma merge (either compactor lane) was in progress, and the share of
   * the run (summary excluded) outside it.
   */
  overhead: { workMs: number; share: number; breakdown?: OverheadBreakdown };
  totalMs: number;
  complete: boolean;
  /** When not complete: what was still outstanding, and the compactor's last log lines. */
  stalled?: {
    jobs: string[];
    queues: Record<string, { visible: number; inFlight: number }>;
    compactorLog: string[];
  };
}

/**
 * `embedctl local run`: the whole pipeline on one machine. Submits receipts (generated, or from --input), then runs
 * ingest → worker processes → stream processor → compactor until every job is finished and compacted, and
 * summarises from the job table and the live snapshot. Everything lives in the home directory, so a second run
 * resumes: job names are deterministic (nothing is created twice), claims of a crashed run go back to Pending,
 * orphaned children are killed, queues keep their messages.
 */
export async function localRun(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const epoch0 = Date.now();
  const log = o.log;
  // Before the home is opened: a bad --input creates nothing.
  if (o.input !== undefined && !statSync(o.input, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--input ${o.input} is not a directory`, { input: o.input });
  const ports = openLocal(o.home);
  let unlock: () => void;
  try {
    unlock = lockHome(ports.paths);
  } catch (err) {
    ports.close();
    throw err;
  }
  const stages: Record<string, StageTime> = {};
  const failures: RunSummary['failures'] = [];
  const embedder = await embedderFromEnv();
  const progress = new Progress(o.progress);
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const launcher = new ProcessLauncher({
    concurrency: o.concurrency + 1,
    pidDir: ports.paths.pids,
    // Children log JSON lines on stderr at the same LOG_LEVEL; shown when it is info or finer.
    ...(log.isLevelEnabled('info')
      ? { onStderr: (_name: string, chunk: string) => process.stderr.write(chunk) }
      : {}),
  });
  let compactor: Promise<LaunchResult | undefined> | undefined;
  let stopping = false;
  const compactorRuns: LaunchResult[] = [];
  const compactorState: RunSummary['compactor'] = { restarts: 0 };
  let stream: Promise<void> | undefined;
  try {
    // 0. Recover from a previous run that died (SIGKILL, power loss): its children and claims.
    const reaped = reapLocalChildren(ports.paths);
    if (reaped.length) log.warn({ reaped }, 'killed children left by a previous run');
    await rm(ports.paths.scratch, { recursive: true, force: true });
    recoverClaims(ports.jobs, log);
    for (const q of Object.values(ports.queues)) q.releaseInFlight();

    // 1. The compactor (one child process, the singleton) starts first: its process and its two Chroma servers come
    // up while receipts are submitted and ingested, so it is ready when the first deltas arrive.
    let t = performance.now();
    const self = await fastChildEntry(o.self, log);
    stages.childBuild = { wallMs: performance.now() - t };
    const tCompactor = performance.now();
    // Supervised like a Deployment's pod: an unexpected exit (killed, crashed, lease lost) is restarted with backoff;
    // the promise settles when the run stops it, or with the last exit once the restarts are used up.
    compactor = superviseCompactor({
      launch: () =>
        launcher.launch({
          name: 'compactor',
          ...childCommand(self, ['compactor', '--home', ports.paths.root]),
          env: localChildEnv('compactor'),
        }),
      stopping: () => stopping,
      runs: compactorRuns,
      state: compactorState,
      signal: abort.signal,
      log,
    });
    compactor.catch(() => undefined); // awaited below; this only keeps an early rejection from being unhandled

    // 2. Submit and ingest (EMBED queue → jobs) the first wave's receipts; the rest follow while it runs.
    const tSubmit = performance.now();
    let rejected: Rejected[] = [];
    const bySource = new Map<string, string>();
    const sourceOf = (name: string) => bySource.get(name);
    let receipts: (InputReceipt | GeneratedReceipt)[];
    if (o.input) {
      const folder = await readInputFolder(o.input);
      rejected = folder.rejected;
      receipts = folder.receipts;
    } else {
      receipts = generateReceipts(o.receipts, o.seed);
    }
    for (const r of rejected) failures.push({ source: r.source, reason: 'BadInput', message: r.reason });
    const submittedNames: string[] = [];
    const skipped: RunSummary['skipped'] = { done: 0, queued: 0 };
    const ingested: IngestStats = { received: 0, created: 0, duplicates: 0, deadLettered: 0 };
    const submitAndIngest = async (chunk: (InputReceipt | GeneratedReceipt)[]) => {
      if (chunk.length) {
        // A receipt whose job exists and whose stored content is the same is neither uploaded nor queued again.
        const { sent, unchanged } = await submitReceipts(
          ports.store,
          ports.queues.embed,
          ARTIFACTS_BUCKET,
          chunk,
          { known: (m) => ports.jobs.get(embeddingJobName(m)) !== undefined },
        );
        for (const m of sent) submittedNames.push(embeddingJobName(m));
        for (const m of unchanged) {
          const phase = ports.jobs.get(embeddingJobName(m))?.phase;
          if (phase === 'Succeeded' || phase === 'Failed') skipped.done++;
          else skipped.queued++;
        }
        for (const r of chunk)
          if ('source' in r)
            bySource.set(
              embeddingJobName({
                image_id: r.imageId,
                receipt_id: r.receiptId,
                artifacts_bucket: ARTIFACTS_BUCKET,
                ...keysOf(r),
              }),
              r.source,
            );
      }
      const t1 = performance.now();
      const got = await ingestAll(ports.queues.embed, ports.jobs, log);
      for (const k of Object.keys(ingested) as (keyof IngestStats)[]) ingested[k] += got[k];
      stages.ingest = { wallMs: (stages.ingest?.wallMs ?? 0) + performance.now() - t1 };
    };
    const firstWave = o.concurrency * firstWaveSize(o.batchSize);
    await submitAndIngest(receipts.slice(0, firstWave));
    const feeding = submitAndIngest(receipts.slice(firstWave)).then(() => {
      // Its own start time: `t` is the dispatch's by the time the feed ends.
      stages.submit = { wallMs: Math.max(0, performance.now() - tSubmit - (stages.ingest?.wallMs ?? 0)) };
      log.info(ingested, 'ingest done');
    });

    // 4. The stream processor (in process) runs alongside the workers and the compactor.
    const tStream = performance.now();
    const processor = new StreamProcessor({
      feed: ports.ledger.changeFeed('stream', { waitMs: 250, pollMs: 50 }),
      queues: { lines: ports.queues.lines, words: ports.queues.words },
      sink: new LocalJobStatusSink(ports.jobs),
      log: log.child({ component: 'stream' }),
    });
    stream = processor.run(abort.signal);

    // 5. Dispatch: jobs → worker processes.
    t = performance.now();
    const workerStats: WorkerChildStats[] = [];
    const workerEnv = localChildEnv('worker');
    let launched = 0;
    let workerFailures = 0;
    progress.start('workers', ports.jobs.list().length + receipts.length - firstWave);
    await dispatchAll(
      ports.jobs,
      launcher,
      {
        batchSize: o.batchSize,
        concurrency: o.concurrency,
        maxAttempts: o.maxAttempts,
        retryBaseMs: 500,
        deadlineMs: 10 * 60_000,
        workerCommand: (workerJob, names) => ({
          ...childCommand(self, [
            'worker',
            '--home',
            ports.paths.root,
            '--worker-job',
            workerJob,
            '--jobs',
            names.join(','),
            ...(o.places ? [] : ['--no-places']),
          ]),
          env: workerEnv,
        }),
        onSettled: () => progress.update('workers', settledCount(ports)),
        onLaunched: () => {
          launched++;
        },
        feeding,
        onFinished: (res) => {
          if (res.reason !== 'Completed') workerFailures++;
          const stats = parseStats<WorkerChildStats>(res.stdout);
          if (stats) workerStats.push(stats);
        },
      },
      log,
      abort.signal,
    );
    progress.stop('workers');
    stages.workers = {
      wallMs: performance.now() - t,
      busyMs: workerStats.reduce((s, w) => s + w.durationMs, 0),
    };
    // Inside the workers: wall = the longest one worker spent embedding, busy = summed over workers.
    stages.embedding = {
      wallMs: Math.max(0, ...workerStats.map((w) => w.embedMs)),
      busyMs: workerStats.reduce((s, w) => s + w.embedMs, 0),
    };

    // 6. Wait until every succeeded job is compacted (or its compaction failed).
    t = performance.now();
    progress.start('compact', ports.jobs.counts().Succeeded);
    const deadline = Date.now() + o.timeoutMs;
    let complete = false;
    for (;;) {
      abort.signal.throwIfAborted();
      const pending = uncompacted(ports);
      progress.update('compact', ports.jobs.counts().Succeeded - pending);
      if (pending === 0) {
        complete = true;
        break;
      }
      const c = await Promise.race([compactor, sleep(200).then(() => 'waiting' as const)]);
      if (c !== 'waiting')
        throw new ChildFailedError(
          'compactor',
          `the compactor child exited ${compactorState.restarts + 1} time(s) and was not restarted again; last: ${compactorState.lastExit ?? 'unknown'}`,
          compactorState,
        );
      if (Date.now() > deadline) break;
    }
    progress.stop('compact');
    stages.compactWait = { wallMs: performance.now() - t };
    stopping = true;
    abort.abort(new Error('done'));
    await stream;
    stages.stream = { wallMs: performance.now() - tStream };
    await launcher.stop(15_000);
    await compactor;
    const cres = compactorRuns.at(-1);
    let stalled: RunSummary['stalled'];
    if (!complete) {
      stalled = {
        jobs: unfinished(ports).slice(0, 20),
        queues: Object.fromEntries(
          await Promise.all(Object.values(ports.queues).map(async (q) => [q.name, await q.depth()] as const)),
        ),
        compactorLog: (cres?.stderr ?? '').trim().split('\n').slice(-10),
      };
    }
    // Every instance of the compactor child that printed its figures (a killed one prints none).
    const cstats = mergeCompactorStats(
      compactorRuns.flatMap((r) => parseStats<CompactorChildStats>(r.stdout) ?? []),
    );
    stages.compactor = {
      wallMs: performance.now() - tCompactor,
      ...(cstats ? { busyMs: cstats.mergeMs + cstats.publishMs } : {}),
    };
    // Time in which embedding (any worker) or a Chroma merge (either lane) was in progress: the rest is overhead.
    const workIntervals = [
      ...workerStats.flatMap((w) => w.embedIntervals),
      ...(cstats?.mergeIntervals ?? []),
    ];
    const workMs = unionMs(workIntervals);
    if (cstats) {
      // Lanes run concurrently: the longer lane is the wall time, the sum the busy time.
      const lanes = Object.values(cstats.mergeMsByCollection);
      stages.chromaWrites = { wallMs: lanes.length ? Math.max(...lanes) : 0, busyMs: cstats.mergeMs };
      stages.publish = { wallMs: cstats.publishMs, busyMs: cstats.publishMs };
    }

    // 7. Summary from the job table and the live snapshot.
    t = performance.now();
    const summary = await summarize(ports, embedder, {
      submitted: submittedNames.length,
      skipped,
      rejected: rejected.length,
      failures,
      stages,
      launched,
      workerFailures,
      complete,
      queries: o.queries,
      sourceOf,
    });
    stages.summary = { wallMs: performance.now() - t };
    if (stalled) summary.stalled = stalled;
    summary.compactor = compactorState;
    summary.totalMs = performance.now() - t0;
    const runMs = summary.totalMs - stages.summary.wallMs;
    summary.overhead = {
      workMs,
      share: runMs > 0 ? Math.max(0, 1 - workMs / runMs) : 0,
      breakdown: overheadBreakdown(
        workIntervals,
        epoch0,
        epoch0 + runMs,
        Object.values(cstats?.laneIntervals ?? {}).flatMap((l) => l.publish),
      ),
    };
    await writeFile(join(ports.paths.root, 'last-run.json'), JSON.stringify(summary, null, 2));
    return summary;
  } finally {
    stopping = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!abort.signal.aborted) abort.abort(new Error('stopping'));
    await stream?.catch(() => undefined);
    await launcher.stop(5000);
    // Every child is gone: their snapshot copies and working copies (a full version each) are not kept.
    await rm(ports.paths.scratch, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn({ err: errorMessage(err), scratch: ports.paths.scratch }, 'could not remove scratch'),
    );
    progress.stop();
    unlock();
    ports.close();
  }
}

function settledCount(ports: LocalPorts): number {
  const c = ports.jobs.counts();
  return c.Succeeded + c.Failed;
}

/** Jobs not finished yet, or succeeded but not settled in compaction (Completed or Failed) for every collection. */
function unfinished(ports: LocalPorts): string[] {
  return ports.jobs
    .list()
    .filter(
      (j) =>
        (j.phase !== 'Succeeded' && j.phase !== 'Failed') ||
        (j.phase === 'Succeeded' &&
          !j.spec.collections.every(
            (col) => j.compaction[col] === 'Completed' || j.compaction[col] === 'Failed',
          )),
    )
    .map(
      (j) =>
        `${j.name} ${j.phase}${j.phase === 'Succeeded' ? ` compaction ${JSON.stringify(j.compaction)}` : ''}`,
    );
}

function uncompacted(ports: LocalPorts): number {
  return unfinished(ports).length;
}

/**
 * How this process starts its children: the same node with the same loader flags (tsx in development) running
 * local/child-main (.ts from source, .js when built).
 */
export function childEntry(): { command: string; args: string[] } {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return {
    command: process.execPath,
    args: [...process.execArgv, fileURLToPath(new URL(`./child-main${ext}`, import.meta.url))],
  };
}

export function childCommand(
  self: { command: string; args: string[] },
  args: string[],
): { command: string; args: string[] } {
  return { command: self.command, args: [...self.args, ...args] };
}

const sleep = (ms: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), ms));

/** Restarts of the compactor child within one run before the run gives up (a crash loop is not retried forever). */
export const COMPACTOR_MAX_RESTARTS = 5;
/** A compactor that ran this long before it exited was healthy: its next restart waits the base delay again. */
const COMPACTOR_HEALTHY_MS = 60_000;

/** The compactor child's last exit, said for a person: killed by a signal, an exit code, its last log line. */
export function describeExit(r: LaunchResult): string {
  const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
  const last = r.stderr.trim().split('\n').at(-1)?.slice(0, 300);
  return last ? `${how}: ${last}` : how;
}

/** A child the run cannot do without (the compactor) failed for good. */
export class ChildFailedError extends Error {
  constructor(
    readonly child: string,
    message: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ChildFailedError';
  }
}

/**
 * Runs the compactor child and restarts it, as a Deployment restarts its pod, when it exits while the run still
 * needs it: after an exponential backoff (the project's ExponentialBackoff, 0.5 s doubling to 10 s; reset after a
 * healthy minute), at most COMPACTOR_MAX_RESTARTS times. Settles when the run stops it (`stopping()`), or with the
 * last exit once the restarts are used up, which the run then reports as its failure. Restarting is safe: the
 * compactor survives SIGKILL at any point (the crash matrix), and the new child waits out the dead one's lease.
 */
async function superviseCompactor(o: {
  launch: () => Promise<LaunchResult>;
  stopping: () => boolean;
  runs: LaunchResult[];
  state: RunSummary['compactor'];
  signal: AbortSignal;
  log: Logger;
}): Promise<LaunchResult | undefined> {
  const backoff = new ExponentialBackoff(500, 10_000);
  for (;;) {
    const started = Date.now();
    let res: LaunchResult;
    try {
      res = await o.launch();
    } catch (err) {
      if (o.stopping()) return undefined; // the launcher was stopped before the restart began
      throw err;
    }
    o.runs.push(res);
    if (o.stopping()) return res;
    o.state.lastExit = describeExit(res);
    if (o.state.restarts >= COMPACTOR_MAX_RESTARTS) {
      o.log.error(
        { exit: o.state.lastExit, restarts: o.state.restarts },
        'compactor child keeps exiting; giving up',
      );
      return res;
    }
    if (Date.now() - started >= COMPACTOR_HEALTHY_MS) backoff.forget('compactor');
    const delayMs = backoff.when('compactor');
    o.state.restarts++;
    o.log.warn(
      { exit: o.state.lastExit, restart: o.state.restarts, delayMs },
      'compactor child exited unexpectedly; restarting it',
    );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delayMs);
      function done() {
        clearTimeout(timer);
        o.signal.removeEventListener('abort', done);
        resolve();
      }
      o.signal.addEventListener('abort', done, { once: true });
    });
    if (o.stopping() || o.signal.aborted) return res;
  }
}

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

function keysOf(r: { imageId: string; receiptId: number }): { lines_key: string; words_key: string } {
  const { linesKey, wordsKey } = artifactKeys(r.imageId, r.receiptId);
  return { lines_key: linesKey, words_key: wordsKey };
}

export async function summarize(
  ports: LocalPorts,
  embedder: Embedder,
  x: {
    submitted: number;
    skipped?: RunSummary['skipped'];
    /** Receipts of the input rejected while the folder was read (they are in `failures` already). */
    rejected?: number;
    failures: RunSummary['failures'];
    stages: Record<string, StageTime>;
    launched: number;
    workerFailures: number;
    complete: boolean;
    queries: boolean;
    sourceOf?: (name: string) => string | undefined;
  },
): Promise<RunSummary> {
  const jobs = ports.jobs.list();
  const succeeded = jobs.filter((j) => j.phase === 'Succeeded');
  const failed = jobs.filter((j) => j.phase === 'Failed');
  const byName: Record<string, number> = {};
  for (const j of succeeded)
    if (j.result?.merchant) byName[j.result.merchant] = (byName[j.result.merchant] ?? 0) + 1;
  const failures = [...x.failures];
  for (const j of failed) {
    failures.push({
      source: x.sourceOf?.(j.name) ?? describeJob(j),
      reason: j.reason ?? 'Failed',
      message: j.message ?? '',
    });
  }
  for (const j of succeeded) {
    for (const c of j.spec.collections) {
      if (j.compaction[c] === 'Failed') {
        failures.push({
          source: describeJob(j),
          reason: 'CompactionFailed',
          message: `${c}: ${j.compactionError ?? 'failed'}`,
        });
      }
    }
  }
  // An EMBED message refused at ingest (a bucket or key outside the allowed ones) is a receipt that failed too.
  const refusedAtIngest = ports.queues.embed.deadLetters().length;
  const deadLetters = Object.values(ports.queues).flatMap((q) =>
    q.deadLetters().map((d) => ({ queue: d.queue, reason: d.reason, body: d.body.slice(0, 200) })),
  );
  const expected: Record<Collection, number> = {
    lines: succeeded.reduce((s, j) => s + (j.result?.rows ?? 0), 0),
    words: succeeded.reduce((s, j) => s + (j.result?.words ?? 0), 0),
  };
  const view = await openSnapshotView(ports.paths.volume, ports.paths.scratch);
  const queries: RunSummary['queries'] = [];
  const vectors = {} as RunSummary['vectors'];
  try {
    for (const c of ['lines', 'words'] as const) {
      const store = view.store(c);
      vectors[c] = { snapshot: store ? await store.count(c) : 0, expected: expected[c] };
    }
    if (x.queries) queries.push(...(await demoQueries(view, embedder, succeeded)));
  } finally {
    await view.close();
  }
  return {
    home: ports.paths.root,
    embedder: {
      model: embedder.model,
      dimensions: embedder.dimensions,
      kind: processEnv()[ENV.OPENAI_API_KEY] ? 'openai' : 'local-lexical',
    },
    submitted: x.submitted,
    skipped: x.skipped ?? { done: 0, queued: 0 },
    receipts: {
      total: jobs.length + (x.rejected ?? 0) + refusedAtIngest,
      succeeded: succeeded.length,
      failed: failed.length + (x.rejected ?? 0) + refusedAtIngest,
    },
    vectors,
    merchants: {
      resolved: succeeded.filter((j) => j.result?.merchant).length,
      unresolved: succeeded.filter((j) => !j.result?.merchant).length,
      byName,
    },
    failures,
    deadLetters,
    snapshot: view.versions,
    stages: x.stages,
    workers: { launched: x.launched, failed: x.workerFailures },
    compactor: { restarts: 0 },
    queries,
    overhead: { workMs: 0, share: 0 },
    totalMs: 0,
    complete: x.complete,
  };
}

function describeJob(j: LocalJob): string {
  return `${j.name} (image ${j.spec.imageId}, receipt ${j.spec.receiptId})`;
}

/** "Receipts like this one", "lines like 'TOTAL'", "words like 'milk'": proof the index answers sensibly. */
async function demoQueries(
  view: Awaited<ReturnType<typeof openSnapshotView>>,
  embedder: Embedder,
  succeeded: LocalJob[],
): Promise<RunSummary['queries']> {
  const out: RunSummary['queries'] = [];
  const lines = view.store('lines');
  const words = view.store('words');
  const hits = (h: QueryHit[]) =>
    h.map((x) => ({
      id: x.id,
      similarity: Math.round(similarity(x.distance) * 1000) / 1000,
      text: x.document,
      ...(typeof x.metadata?.merchant_name === 'string' ? { merchant: x.metadata.merchant_name } : {}),
    }));
  try {
    // A receipt with a look-alike among the others, so "like this one" has something to find. Which merchants got
    // resolved depends on timing (the snapshot grows while workers run), so receipts of a merchant seen more than
    // once are tried first, then any; the first few candidates are queried and the closest match is shown.
    const perMerchant = new Map<string, number>();
    for (const j of succeeded)
      if (j.result?.merchant)
        perMerchant.set(j.result.merchant, (perMerchant.get(j.result.merchant) ?? 0) + 1);
    const repeated = (j: LocalJob) => (perMerchant.get(j.result?.merchant ?? '') ?? 0) > 1;
    const candidates = [...succeeded.filter(repeated), ...succeeded.filter((j) => !repeated(j))].slice(0, 8);
    let best: RunSummary['queries'][number] | undefined;
    for (const job of lines ? candidates : []) {
      const found = await receiptsLike(lines!, job);
      if (!found) continue;
      const query = { ...found, hits: hits(found.hits) };
      if (!best || (query.hits[0]?.similarity ?? 0) > (best.hits[0]?.similarity ?? 0)) best = query;
      if ((best.hits[0]?.similarity ?? 0) >= 0.99) break;
    }
    if (best) out.push(best);
    const [total, milk] = await embedder.embed(['TOTAL', 'milk']);
    if (lines)
      out.push({
        title: `lines like 'TOTAL'`,
        collection: 'lines',
        hits: hits(await lines.query('lines', total!, 3)),
      });
    if (words)
      out.push({
        title: `words like 'milk'`,
        collection: 'words',
        hits: hits(await words.query('words', milk!, 3)),
      });
  } catch (err) {
    out.push({ title: `queries failed: ${errorMessage(err)}`, collection: 'lines', hits: [] });
  }
  return out;
}

/** The receipt's top row (its merchant header: y = 0 is the bottom) and the nearest top rows of *other* receipts. */
async function receiptsLike(
  lines: NonNullable<ReturnType<Awaited<ReturnType<typeof openSnapshotView>>['store']>>,
  job: LocalJob,
): Promise<{ title: string; collection: 'lines'; hits: QueryHit[] } | undefined> {
  const prefix = `IMAGE#${job.spec.imageId}#RECEIPT#${String(job.spec.receiptId).padStart(5, '0')}#LINE#`;
  const own = await lines.get('lines', {
    where: { $and: [{ image_id: job.spec.imageId }, { receipt_id: job.spec.receiptId }] },
    include: ['embeddings', 'documents', 'metadatas'],
  });
  let i = -1;
  own.metadatas.forEach((m, k) => {
    if (own.ids[k]!.startsWith(prefix) && (i < 0 || Number(m?.y ?? 0) > Number(own.metadatas[i]?.y ?? 0)))
      i = k;
  });
  if (i < 0 || !own.embeddings?.[i]) return undefined;
  const found = await lines.query('lines', own.embeddings[i]!, 8);
  return {
    title: `receipts like ${job.spec.imageId}#${job.spec.receiptId} (row "${own.documents[i] ?? ''}")`,
    collection: 'lines',
    hits: found.filter((h) => parseVectorId(h.id)?.imageId !== job.spec.imageId).slice(0, 3),
  };
}

import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV } from '../core/config/env.js';
import { embeddingJobName } from '../core/contracts/embedding-job.js';
import { UsageError } from '../core/errors.js';
import { ExponentialBackoff } from '../core/kube/work-queue.js';
import { ProcessLauncher, type LaunchResult } from '../core/local/launcher.js';
import type { Logger } from '../core/log.js';
import { artifactKeys, generateReceipts, type GeneratedReceipt } from '../core/sample/index.js';
import { StreamProcessor } from '../stream/processor.js';
import { ARTIFACTS_BUCKET, homePaths, lockHome, openLocal, type LocalPorts } from './home.js';
import { chooseEmbedder, makeEmbedder, recordHomeEmbedder, type EmbedderKind } from './embedder.js';
import { readInputFolder, submitReceipts, type InputReceipt, type Rejected } from './input.js';
import {
  dispatchAll,
  firstWaveSize,
  ingestAll,
  LocalJobStatusSink,
  recoverClaims,
  type IngestStats,
} from './loop.js';
import { fastChildEntry } from './child-bundle.js';
import { reapLocalChildren } from './child-argv.js';
import { localChildEnv } from './child-env.js';
import { Progress } from './progress.js';
import { RunObserver } from './run-observer.js';
import type { RunSummary } from './run-summary.js';

export type { RunSummary, StageTime } from './run-summary.js';

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
  /** The embedder asked for (`--embedder`); unset: the home's, else OpenAI with OPENAI_API_KEY, else sentence. */
  embedder?: EmbedderKind;
  /** How a child process is started (local/child-main with this process's node and loader flags). */
  self: { command: string; args: string[] };
  log: Logger;
  progress: boolean;
}

/**
 * `embedctl local run`: the whole pipeline on one machine. Submits receipts (generated, or from --input), then runs
 * ingest → worker processes → stream processor → compactor until every job is finished and compacted, and
 * summarises from the job table and the live snapshot. Everything lives in the home directory, so a second run
 * resumes: job names are deterministic (nothing is created twice), claims of a crashed run go back to Pending,
 * orphaned children are killed, queues keep their messages.
 */
export async function localRun(o: RunOptions): Promise<RunSummary> {
  const observer = new RunObserver();
  const log = o.log;
  // Before the home is opened: a bad --input creates nothing.
  if (o.input !== undefined && !statSync(o.input, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--input ${o.input} is not a directory`, { input: o.input });
  // Before the home is opened too: a missing model or a home of another embedder stops the run here (exit 2).
  const embedderKind = chooseEmbedder(homePaths(o.home), o.embedder);
  const embedder = await makeEmbedder(embedderKind);
  const ports = openLocal(o.home);
  let unlock: () => void;
  try {
    unlock = lockHome(ports.paths);
  } catch (err) {
    ports.close();
    throw err;
  }
  try {
    recordHomeEmbedder(ports.paths, embedderKind, embedder);
  } catch (err) {
    unlock();
    ports.close();
    throw err;
  }
  const failures: RunSummary['failures'] = [];
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
    const self = await observer.timed('childBuild', () => fastChildEntry(o.self, log));
    observer.start('compactor');
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
    observer.start('submit');
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
      const got = await observer.timed('ingest', () => ingestAll(ports.queues.embed, ports.jobs, log));
      for (const k of Object.keys(ingested) as (keyof IngestStats)[]) ingested[k] += got[k];
    };
    const firstWave = o.concurrency * firstWaveSize(o.batchSize);
    await submitAndIngest(receipts.slice(0, firstWave));
    const feeding = submitAndIngest(receipts.slice(firstWave)).then(() => {
      observer.feedDone();
      log.info(ingested, 'ingest done');
    });

    // 3. The stream processor (in process) runs alongside the workers and the compactor.
    observer.start('stream');
    const processor = new StreamProcessor({
      feed: ports.ledger.changeFeed('stream', { waitMs: 250, pollMs: 50 }),
      queues: { lines: ports.queues.lines, words: ports.queues.words },
      sink: new LocalJobStatusSink(ports.jobs),
      log: log.child({ component: 'stream' }),
    });
    stream = processor.run(abort.signal);

    // 4. Dispatch: jobs → worker processes.
    observer.start('workers');
    // The workers embed with the runner's choice, whatever their environment would pick.
    const workerEnv = { ...localChildEnv('worker'), [ENV.EMBEDCTL_EMBEDDER]: embedderKind };
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
        onLaunched: () => observer.workerLaunched(),
        feeding,
        onFinished: (res) => observer.workerFinished(res),
      },
      log,
      abort.signal,
    );
    progress.stop('workers');
    observer.workersDone();

    // 5. Wait until every succeeded job is compacted (or its compaction failed).
    observer.start('compactWait');
    const complete = await compacted(ports, compactor, compactorState, {
      deadline: Date.now() + o.timeoutMs,
      progress,
      signal: abort.signal,
    });
    observer.end('compactWait');
    stopping = true;
    abort.abort(new Error('done'));
    await stream;
    observer.end('stream');
    await launcher.stop(15_000);
    await compactor;
    const stalled = complete ? undefined : await stalledReport(ports, compactorRuns.at(-1));
    observer.compactorDone(compactorRuns);

    // 6. Summary from the job table and the live snapshot.
    const summary = await observer.summary(ports, embedder, {
      embedderKind,
      submitted: submittedNames.length,
      skipped,
      rejected: rejected.length,
      failures,
      complete,
      queries: o.queries,
      sourceOf,
    });
    if (stalled) summary.stalled = stalled;
    summary.compactor = compactorState;
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
      log.warn({ err, scratch: ports.paths.scratch }, 'could not remove scratch'),
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

/**
 * Waits until every succeeded job is compacted (or its compaction failed): true then, false at the deadline. Throws
 * when the compactor child has exited for good.
 */
async function compacted(
  ports: LocalPorts,
  compactor: Promise<LaunchResult | undefined>,
  state: RunSummary['compactor'],
  o: { deadline: number; progress: Progress; signal: AbortSignal },
): Promise<boolean> {
  o.progress.start('compact', ports.jobs.counts().Succeeded);
  try {
    for (;;) {
      o.signal.throwIfAborted();
      const pending = unfinished(ports).length;
      o.progress.update('compact', ports.jobs.counts().Succeeded - pending);
      if (pending === 0) return true;
      const c = await Promise.race([compactor, sleep(200).then(() => 'waiting' as const)]);
      if (c !== 'waiting')
        throw new ChildFailedError(
          'compactor',
          `the compactor child exited ${state.restarts + 1} time(s) and was not restarted again; last: ${state.lastExit ?? 'unknown'}`,
          state,
        );
      if (Date.now() > o.deadline) return false;
    }
  } finally {
    o.progress.stop('compact');
  }
}

/** What was still outstanding when the run gave up waiting, and the compactor's last log lines. */
async function stalledReport(
  ports: LocalPorts,
  lastCompactor: LaunchResult | undefined,
): Promise<NonNullable<RunSummary['stalled']>> {
  return {
    jobs: unfinished(ports).slice(0, 20),
    queues: Object.fromEntries(
      await Promise.all(Object.values(ports.queues).map(async (q) => [q.name, await q.depth()] as const)),
    ),
    compactorLog: (lastCompactor?.stderr ?? '').trim().split('\n').slice(-10),
  };
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

function keysOf(r: { imageId: string; receiptId: number }): { lines_key: string; words_key: string } {
  const { linesKey, wordsKey } = artifactKeys(r.imageId, r.receiptId);
  return { lines_key: linesKey, words_key: wordsKey };
}

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapshotLinesIndexSource } from '../core/chroma/lines-snapshot.js';
import { StaticPlaceLookup, type PlaceLookup } from '../core/merchant/place-lookup.js';
import type { Embedder } from '../core/ports/embedder.js';
import { normalizeAddress, normalizePhone } from '../core/receipt/anchors.js';
import { MERCHANTS } from '../core/sample/index.js';
import { processBatch } from '../worker/batch.js';
import type { Reporter, WorkItem } from '../worker/work-item.js';
import { BusyRecorder, type Interval } from './intervals.js';
import { localLogger, printStats } from './log.js';
import { askedEmbedder, chooseEmbedder, makeEmbedder } from './embedder.js';
import { openLocal, VECTORS_BUCKET } from './home.js';

/** What a worker child prints as its last stdout line, for the runner's per-stage times. */
export interface WorkerChildStats {
  workerJob: string;
  items: number;
  vectors: number;
  durationMs: number;
  embedMs: number;
  /** When embedding was in progress, for the runner's overhead figure. */
  embedIntervals: Interval[];
  embedCalls: number;
  merchantIndexMs: number;
}

/**
 * `embedctl local worker`: one local "worker Job". Runs the worker's own `processBatch` over the local ports and
 * reports each item in the job table (the local form of the status.report patch). Exit codes as in
 * controller/README.md: 0 every item reported, 1 retry the unreported ones, 2 bad arguments.
 */
export async function runWorkerChild(opts: {
  home?: string;
  workerJob: string;
  jobs: string[];
  places: boolean;
}): Promise<number> {
  const log = localLogger('worker').child({ workerJob: opts.workerJob });
  const ports = openLocal(opts.home);
  const scratch = join(ports.paths.scratch, opts.workerJob);
  try {
    const items: WorkItem[] = [];
    for (const name of opts.jobs) {
      const job = ports.jobs.get(name);
      if (!job) {
        log.warn({ ej: name }, 'job does not exist (deleted?); skipping');
        continue;
      }
      items.push({ name, attemptKey: `attempt-${job.attempts}`, spec: job.spec });
    }
    const reporter: Reporter = {
      succeeded: async (item, result) => {
        ports.jobs.report(
          item.name,
          { workerJob: opts.workerJob, outcome: 'Succeeded', reportedAt: new Date().toISOString() },
          result,
        );
      },
      failed: async (item, f) => {
        ports.jobs.report(item.name, {
          workerJob: opts.workerJob,
          outcome: 'Failed',
          reason: f.reason,
          message: f.message,
          reportedAt: new Date().toISOString(),
        });
      },
    };
    // The runner sets EMBEDCTL_EMBEDDER to its choice (local/run.ts); else the home's, as the runner would choose.
    const embedder = new TimedEmbedder(
      await makeEmbedder(chooseEmbedder(ports.paths, askedEmbedder(undefined))),
    );
    const outcome = await processBatch(
      {
        store: ports.store,
        ledger: ports.ledger,
        embedder,
        vectorsBucket: VECTORS_BUCKET,
        linesIndex: new SnapshotLinesIndexSource({
          chromaRoot: ports.paths.volume,
          scratchDir: scratch,
          objectStore: ports.store,
          vectorsBucket: VECTORS_BUCKET,
          log,
        }),
        ...(opts.places ? { placeLookup: samplePlaces() } : {}),
        reporter,
        log,
      },
      items,
    );
    const stats: WorkerChildStats = {
      workerJob: opts.workerJob,
      items: items.length,
      vectors: outcome.vectors,
      durationMs: outcome.durationMs,
      embedMs: Math.round(embedder.busy.busyMs),
      embedIntervals: embedder.busy.intervals,
      embedCalls: embedder.calls,
      merchantIndexMs: outcome.merchantIndex?.openMs ?? 0,
    };
    printStats(stats);
    return outcome.exitCode;
  } catch (err) {
    log.error({ err }, 'worker batch failed');
    return 1;
  } finally {
    ports.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * A stand-in for the original's Google Places tier in local mode: the places of the synthetic generator's
 * merchants, matched by exact phone or address only (the resolver then checks the name against the receipt). It
 * lets the demo resolve merchants before the `lines` snapshot holds any; real receipts simply never match it.
 */
export function samplePlaces(): PlaceLookup {
  return new StaticPlaceLookup(
    MERCHANTS.flatMap((m) =>
      m.branches.map((b) => ({
        name: m.name,
        phone: normalizePhone(b.phone),
        address: normalizeAddress(`${b.street}, ${b.city}, ${b.state} ${b.zip}`),
        types: [m.category],
      })),
    ),
  );
}

/** Wall-clock time with at least one embed call in flight (calls overlap across the batch's jobs). */
class TimedEmbedder implements Embedder {
  readonly busy = new BusyRecorder();
  calls = 0;

  constructor(private readonly inner: Embedder) {}

  get model(): string {
    return this.inner.model;
  }

  get dimensions(): number {
    return this.inner.dimensions;
  }

  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]> {
    this.calls++;
    return this.busy.time(() => this.inner.embed(texts, options));
  }
}
